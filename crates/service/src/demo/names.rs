//! The word lists the demo draws from. Weights are rough shares, not
//! statistics to cite: close enough that a page of residents looks like a
//! page from a real Shandong register.

/// Common surnames with weights roughly in proportion to their national
/// frequency (per mille), nudged towards Shandong (孙, 于, 高, 徐 are more
/// common there than nationally).
pub(super) const SURNAMES: &[(&str, u32)] = &[
    ("王", 74),
    ("李", 70),
    ("张", 69),
    ("刘", 54),
    ("陈", 40),
    ("杨", 31),
    ("黄", 18),
    ("赵", 24),
    ("吴", 17),
    ("周", 17),
    ("徐", 18),
    ("孙", 22),
    ("马", 16),
    ("朱", 13),
    ("胡", 11),
    ("郭", 12),
    ("何", 9),
    ("高", 15),
    ("林", 9),
    ("罗", 7),
    ("郑", 9),
    ("梁", 8),
    ("谢", 6),
    ("宋", 9),
    ("唐", 6),
    ("许", 7),
    ("韩", 8),
    ("冯", 7),
    ("邓", 5),
    ("曹", 7),
    ("彭", 5),
    ("曾", 4),
    ("肖", 5),
    ("田", 6),
    ("董", 8),
    ("袁", 5),
    ("潘", 4),
    ("于", 12),
    ("蒋", 4),
    ("蔡", 4),
    ("余", 4),
    ("杜", 6),
    ("叶", 3),
    ("程", 5),
    ("苏", 5),
    ("魏", 6),
    ("吕", 6),
    ("丁", 6),
    ("任", 5),
    ("沈", 3),
    ("姚", 4),
    ("卢", 4),
    ("姜", 7),
    ("崔", 6),
    ("钟", 3),
    ("谭", 3),
    ("陆", 3),
    ("汪", 3),
    ("范", 4),
    ("金", 3),
    ("石", 4),
    ("廖", 2),
    ("贾", 4),
    ("夏", 3),
    ("韦", 2),
    ("付", 4),
    ("方", 3),
    ("白", 3),
    ("邹", 2),
    ("孟", 5),
    ("熊", 2),
    ("秦", 3),
    ("邱", 2),
    ("江", 2),
    ("尹", 3),
    ("薛", 3),
    ("闫", 4),
    ("段", 3),
    ("雷", 2),
    ("侯", 3),
    ("龙", 1),
    ("史", 3),
    ("陶", 2),
    ("黎", 1),
    ("贺", 2),
    ("顾", 2),
    ("毛", 2),
    ("郝", 3),
    ("龚", 1),
    ("邵", 2),
    ("万", 2),
    ("钱", 1),
    ("严", 1),
    ("武", 3),
    ("戴", 2),
    ("莫", 1),
    ("孔", 3),
    ("常", 2),
    ("欧阳", 1),
    ("司马", 1),
];

/// Given names by the era a person was born in: names follow fashions, and a
/// grandmother called 梓涵 would look wrong.
pub(super) const MALE_BEFORE_1960: &[&str] = &[
    "建国", "国庆", "建军", "振华", "德明", "德胜", "福生", "长海", "志远", "玉山", "树林", "金山",
    "永福", "洪亮", "广才", "宝山", "庆祥", "春生", "守信", "继光", "学文", "中华", "文明", "新民",
    "军", "明", "林", "山", "福", "贵", "海", "忠", "义", "礼",
];

pub(super) const FEMALE_BEFORE_1960: &[&str] = &[
    "秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "淑珍", "秀珍", "玉梅", "桂芝", "素芳", "玉珍",
    "翠花", "淑华", "秀云", "兰英", "玉凤", "凤兰", "桂荣", "秀芳", "素英", "金凤", "玉华", "春兰",
    "英", "兰", "芬", "珍",
];

pub(super) const MALE_1960_1989: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "波", "宁", "建华", "海涛", "志刚", "立新", "晓东", "建平", "永强", "海波", "红军", "卫东",
    "国华", "建伟", "志勇", "文杰", "东升", "向阳", "建新", "庆华", "海峰", "新华", "春雷", "金龙",
];

pub(super) const FEMALE_1960_1989: &[&str] = &[
    "丽", "静", "敏", "燕", "艳", "娟", "霞", "芳", "娜", "红", "玲", "慧", "莉", "丽娟", "海燕",
    "晓燕", "秀梅", "春梅", "丽华", "红梅", "雪梅", "晓红", "丽萍", "玉霞", "美玲", "晓丽", "丽丽",
    "爱华", "红霞", "凤霞", "建红", "卫红", "艳丽", "海霞", "秀娟", "晓梅",
];

pub(super) const MALE_SINCE_1990: &[&str] = &[
    "浩", "宇", "轩", "博", "鑫", "睿", "铭", "子轩", "浩然", "宇轩", "梓轩", "一鸣", "俊熙",
    "皓轩", "子墨", "沐阳", "奕辰", "宇航", "家豪", "博文", "思远", "鹏飞", "浩宇", "晨阳", "天佑",
    "锦程", "子豪", "昊天", "嘉懿", "明哲", "梓豪", "俊杰", "志豪", "文博", "一诺", "承泽",
];

pub(super) const FEMALE_SINCE_1990: &[&str] = &[
    "悦", "琪", "萱", "欣怡", "梓涵", "诗涵", "雨涵", "子涵", "一诺", "依诺", "梓萱", "思彤",
    "可馨", "雨欣", "佳怡", "紫涵", "语桐", "若汐", "婉清", "欣妍", "晨曦", "佳琪", "雅琪", "梦瑶",
    "静怡", "文静", "思雨", "雨桐", "梓琪", "欣然", "诗琪", "馨怡", "安琪", "语嫣",
];

/// Community names in the style of Binzhou's 滨城区 (rivers, seas, old town
/// names). The first ones are the communities of the default demo.
pub(super) const COMMUNITIES: &[&str] = &[
    "黄河社区",
    "渤海社区",
    "新立社区",
    "北镇社区",
    "中海社区",
    "彩虹湖社区",
    "东城社区",
    "西城社区",
    "南湖社区",
    "玉龙湖社区",
    "滨河社区",
    "长江社区",
    "新华社区",
    "建设社区",
    "民生社区",
    "和平社区",
    "青年社区",
    "光明社区",
    "胜利社区",
    "古城社区",
    "秦皇台社区",
    "凤凰社区",
    "金海社区",
    "银河社区",
    "紫金社区",
    "学苑社区",
    "锦城社区",
    "丽景社区",
    "永莘社区",
    "梧桐社区",
];

/// Names of 1980s–90s work-unit compounds (单位宿舍): low-rise, no lift.
pub(super) const OLD_COMPOUNDS: &[&str] = &[
    "黄河小区",
    "渤海小区",
    "新立小区",
    "供电小区",
    "物资局宿舍",
    "教育局家属院",
    "建行宿舍",
    "农行宿舍",
    "滨医家属院",
    "油田小区",
    "邮电小区",
    "交通局宿舍",
    "粮食局宿舍",
    "棉纺厂宿舍",
    "化工厂宿舍",
    "印染厂宿舍",
    "清怡小区",
    "康居小区",
    "安居小区",
    "民安小区",
    "福苑小区",
    "富源小区",
    "税务局宿舍",
    "医药公司宿舍",
    "商业局宿舍",
    "水利局家属院",
    "师范家属院",
    "二轻局宿舍",
];

/// Names of compounds built since 2000: mid- and high-rise, with lifts.
pub(super) const NEW_COMPOUNDS: &[&str] = &[
    "幸福家园",
    "阳光花园",
    "金色家园",
    "香榭里",
    "颐和园",
    "凤凰城",
    "水木清华",
    "和园",
    "御园",
    "滨湖花园",
    "紫金城",
    "锦绣华城",
    "春江花月",
    "翰林苑",
    "书香苑",
    "东方明珠",
    "黄河人家",
    "滨河苑",
    "湖滨花园",
    "新城嘉园",
    "丽景苑",
    "世纪花园",
    "明珠花园",
    "怡和园",
    "泰和园",
    "嘉和园",
    "盛世华庭",
    "天鸿苑",
    "星河湾",
    "盛世名门",
    "玉龙湖畔",
    "北海明珠",
];

/// Organisations that get a 专属网格, with their own buildings (no
/// households) and a staff dormitory (households).
pub(super) const SCHOOLS: &[&str] =
    &["滨城区实验学校", "滨州市第一中学", "滨城区第三中学", "滨州市实验小学"];
pub(super) const SCHOOL_BUILDINGS: &[&str] = &["教学楼", "实验楼", "综合楼"];
pub(super) const SCHOOL_DORMITORY: &str = "教职工宿舍";

pub(super) const HOSPITALS: &[&str] = &["滨州市人民医院", "滨城区中医医院", "滨城区妇幼保健院"];
pub(super) const HOSPITAL_BUILDINGS: &[&str] = &["门诊楼", "住院部", "医技楼"];
pub(super) const HOSPITAL_DORMITORY: &str = "职工家属楼";

pub(super) const MARKETS: &[&str] = &["渤海农贸市场", "黄河五路综合市场", "新立河农贸市场"];
pub(super) const MARKET_BUILDINGS: &[&str] = &["交易大厅", "冷链仓库"];
pub(super) const MARKET_DORMITORY: &str = "商户公寓";

/// GB/T 2260 codes of Binzhou's counties, weighted by how many people born
/// there would live in 滨城区's old town: mostly locals.
pub(super) const BINZHOU_COUNTIES: &[(&str, u32)] = &[
    ("371602", 70), // 滨城区
    ("371603", 5),  // 沾化区
    ("371621", 7),  // 惠民县
    ("371622", 4),  // 阳信县
    ("371623", 4),  // 无棣县
    ("371625", 5),  // 博兴县
    ("371681", 5),  // 邹平市
];

/// Where floating residents come from: a birthplace code and the place as a
/// register would write it. Some codes are abolished (440524 潮阳县,
/// 510122 双流县): people keep them in their ID numbers for life.
pub(super) const ORIGINS: &[(&str, &str, u32)] = &[
    ("370102", "山东省济南市历下区", 6),
    ("370502", "山东省东营市东营区", 6),
    ("371402", "山东省德州市德城区", 5),
    ("370781", "山东省青州市", 3),
    ("371302", "山东省临沂市兰山区", 3),
    ("370305", "山东省淄博市临淄区", 3),
    ("130925", "河北省沧州市盐山县", 7),
    ("130102", "河北省石家庄市长安区", 4),
    ("131102", "河北省衡水市桃城区", 4),
    ("410102", "河南省郑州市中原区", 5),
    ("410522", "河南省安阳县", 4),
    ("411302", "河南省南阳市宛城区", 3),
    ("340102", "安徽省合肥市瑶海区", 4),
    ("341321", "安徽省砀山县", 3),
    ("320382", "江苏省邳州市", 3),
    ("220102", "吉林省长春市南关区", 2),
    ("230102", "黑龙江省哈尔滨市道里区", 3),
    ("210102", "辽宁省沈阳市和平区", 2),
    ("140105", "山西省太原市小店区", 2),
    ("610113", "陕西省西安市雁塔区", 2),
    ("150102", "内蒙古自治区呼和浩特市新城区", 2),
    ("120101", "天津市和平区", 2),
    ("110105", "北京市朝阳区", 1),
    ("420102", "湖北省武汉市江岸区", 2),
    ("510122", "四川省成都市双流县", 2),
    ("500101", "重庆市万州区", 2),
    ("360102", "江西省南昌市东湖区", 1),
    ("450102", "广西壮族自治区南宁市兴宁区", 1),
    ("440524", "广东省汕头市潮阳县", 1),
];

/// Mobile prefixes in use in Shandong. The domain deliberately does not
/// whitelist prefixes; this list only makes numbers look familiar.
pub(super) const PHONE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180",
    "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
];

/// 黄河X路 run east–west and 渤海X路 north–south through Binzhou's old town.
pub(super) fn streets() -> Vec<String> {
    let mut streets = Vec::new();
    for n in 1..=12 {
        streets.push(format!("黄河{}路", chinese_number(n)));
    }
    for n in 1..=24 {
        streets.push(format!("渤海{}路", chinese_number(n)));
    }
    for n in 1..=5 {
        streets.push(format!("长江{}路", chinese_number(n)));
    }
    streets.extend(["新立河东路", "新立河西路", "中海路", "南海路", "滨河路"].map(String::from));
    streets
}

/// 1–99 in Chinese numerals, as street names write them (十二, 二十四).
pub(super) fn chinese_number(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let (tens, ones) = (n / 10, n % 10);
    let mut s = String::new();
    match tens {
        0 => {}
        1 => s.push('十'),
        t => {
            s.push_str(DIGITS[t as usize % 10]);
            s.push('十');
        }
    }
    if ones != 0 || tens == 0 {
        s.push_str(DIGITS[ones as usize]);
    }
    s
}
