//! `epigrid match FILE`: matches a list sent from above (协查名单) against
//! the registry, creates the verification tasks, prints the counts and,
//! with `--out`, writes the result as .xlsx. Messages are Chinese unless
//! `--lang en`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use epigrid_service::Service;
use epigrid_web::i18n::{Lang, t};

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The list: .xlsx, .xls or .csv with 姓名/身份证号/联系电话/来源地/抵达日期/备注
    /// (and optionally 住址), or the English headers
    file: PathBuf,
    /// Match as this account (its role and scope apply) instead of the system
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: Option<String>,
    /// Write the result (the list plus 匹配结果, 所在网格, 核查任务状态) here
    #[arg(long)]
    out: Option<PathBuf>,
    /// Language of messages: zh-CN or en
    #[arg(long, default_value = "zh-CN")]
    lang: String,
}

fn fill(template: String, values: &[(&str, String)]) -> String {
    values.iter().fold(template, |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

pub async fn run(service: &Service, args: MatchArgs) -> anyhow::Result<()> {
    let lang =
        Lang::parse(&args.lang).with_context(|| format!("unknown language {:?}", args.lang))?;
    let tr = move |key: &str| t(lang, key);
    let actor = crate::export::actor(service, args.as_user.as_deref()).await?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let file_name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let started = Instant::now();
    let summary = service
        .upload_match_list(&actor, &file_name, &bytes)
        .await
        .map_err(|e| anyhow::anyhow!("{}", tr(e.code())))?;
    let elapsed = started.elapsed();
    println!(
        "{}",
        fill(
            tr("matching.cli.counts"),
            &[
                ("total", summary.total.to_string()),
                ("exact", summary.exact.to_string()),
                ("probable", summary.probable.to_string()),
                ("unmatched", summary.unmatched.to_string()),
                ("problems", summary.problem_rows.to_string()),
                ("tasks", summary.tasks.to_string()),
            ]
        )
    );
    eprintln!(
        "list {} in {:.2} s (matching {:.2} s, tasks {:.2} s)",
        summary.list_id,
        elapsed.as_secs_f64(),
        summary.match_seconds,
        summary.task_seconds
    );
    if let Some(out) = &args.out {
        let zh = |key: &str| t(Lang::ZhCn, key);
        let (_, xlsx) = service
            .match_result_xlsx(&actor, summary.list_id, &zh)
            .await
            .map_err(|e| anyhow::anyhow!("{}", tr(e.code())))?;
        std::fs::write(out, xlsx).with_context(|| format!("writing {}", out.display()))?;
        println!("{}", fill(tr("matching.cli.written"), &[("path", out.display().to_string())]));
    }
    Ok(())
}
