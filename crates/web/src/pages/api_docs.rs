//! `/api/docs`: the OpenAPI document of `/api/openapi.json` as a page, made
//! on the server from the document itself, so it needs no script, no CDN and
//! no network. Operations are grouped by tag; each shows its method and
//! path, summary, security, parameters, request body and answers, and every
//! named schema is listed once at the end, linked from where it is used.
//! The labels and the operation summaries go through the translations; the
//! longer descriptions are the document's own (English).

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;

use super::{Chrome, render};
use crate::AppState;
use crate::extract::session_token;
use crate::i18n::{Lang, has_key};

/// A type as the page writes it: text, and the schema it links to.
#[derive(Debug, Clone, Default)]
pub struct TypeText {
    pub text: String,
    pub link: Option<String>,
}

#[derive(Debug)]
pub struct ParamView {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub kind: TypeText,
    pub description: String,
}

#[derive(Debug)]
pub struct BodyView {
    pub content_type: String,
    pub kind: TypeText,
}

#[derive(Debug)]
pub struct ResponseView {
    pub status: String,
    pub description: String,
    pub bodies: Vec<BodyView>,
}

#[derive(Debug)]
pub struct OperationView {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub security: Vec<String>,
    pub params: Vec<ParamView>,
    pub request: Vec<BodyView>,
    pub request_required: bool,
    pub responses: Vec<ResponseView>,
}

#[derive(Debug)]
pub struct TagView {
    pub anchor: String,
    pub name: String,
    pub description: String,
    pub operations: Vec<OperationView>,
}

#[derive(Debug)]
pub struct FieldView {
    pub name: String,
    pub required: bool,
    pub kind: TypeText,
    pub description: String,
}

#[derive(Debug)]
pub struct SchemaView {
    pub anchor: String,
    pub name: String,
    pub description: String,
    /// What it is when it is not an object with fields: `string`, "one of …".
    pub kind: TypeText,
    pub fields: Vec<FieldView>,
    /// The alternatives of a `oneOf`.
    pub variants: Vec<TypeText>,
}

#[derive(Debug)]
pub struct SchemeView {
    pub name: String,
    pub kind: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    chrome: Chrome,
    version: String,
    openapi: String,
    operation_count: usize,
    tags: Vec<TagView>,
    schemas: Vec<SchemaView>,
    schemes: Vec<SchemeView>,
}

/// The visitor, if logged in: the page is public (it holds no data), but a
/// logged-in visitor keeps their navigation.
#[derive(Debug)]
pub struct MaybeActor(Option<epigrid_service::Actor>);

impl FromRequestParts<AppState> for MaybeActor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(&parts.headers) else {
            return Ok(MaybeActor(None));
        };
        Ok(MaybeActor(state.service.authenticate(&token).await.ok()))
    }
}

pub async fn show(lang: Lang, MaybeActor(actor): MaybeActor) -> Response {
    let doc = serde_json::to_value(crate::openapi::document()).unwrap_or_default();
    let page = build(lang, &doc, Chrome::new(lang, actor.as_ref(), "api_docs", "/api/docs"));
    render(&page)
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The translation of `key` when there is one, else `fallback`.
fn translated(lang: Lang, key: &str, fallback: String) -> String {
    if has_key(lang, key) { crate::i18n::t(lang, key) } else { fallback }
}

fn build(lang: Lang, doc: &Value, chrome: Chrome) -> DocsPage {
    let mut tags: Vec<TagView> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tag| {
            let name = text(tag, "name");
            TagView {
                anchor: format!("tag-{name}"),
                description: translated(
                    lang,
                    &format!("api_docs.tag.{name}.about"),
                    text(tag, "description"),
                ),
                name: translated(lang, &format!("api_docs.tag.{name}"), name),
                operations: Vec::new(),
            }
        })
        .collect();
    let tag_names: Vec<String> =
        doc["tags"].as_array().into_iter().flatten().map(|t| text(t, "name")).collect();
    let mut operation_count = 0;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            operation_count += 1;
            let tag = op["tags"].get(0).and_then(Value::as_str).unwrap_or_default();
            let index = tag_names
                .iter()
                .position(|t| t == tag)
                .unwrap_or_else(|| tag_names.len().saturating_sub(1));
            if let Some(group) = tags.get_mut(index) {
                group.operations.push(operation(lang, path, method, op));
            }
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| schema_view(name, schema))
        .collect();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, scheme)| SchemeView {
            name: translated(lang, &format!("api_docs.scheme.{name}"), name.clone()),
            kind: match text(scheme, "type").as_str() {
                "apiKey" => format!("{} {}", text(scheme, "in"), text(scheme, "name")),
                "http" => format!("Authorization: {}", capitalised(&text(scheme, "scheme"))),
                other => other.to_owned(),
            },
            description: text(scheme, "description"),
        })
        .collect();
    DocsPage {
        chrome,
        version: text(&doc["info"], "version"),
        openapi: text(doc, "openapi"),
        operation_count,
        tags,
        schemas,
        schemes,
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn operation(lang: Lang, path: &str, method: &str, op: &Value) -> OperationView {
    let id = text(op, "operationId");
    let security = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|requirement| {
            let names: Vec<String> = requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| translated(lang, &format!("api_docs.scheme.{name}"), name.clone()))
                .collect();
            if names.is_empty() {
                crate::i18n::t(lang, "api_docs.no_auth")
            } else {
                names.join(" + ")
            }
        })
        .collect();
    let params = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| ParamView {
            name: text(p, "name"),
            location: text(p, "in"),
            required: p["required"].as_bool().unwrap_or(false),
            kind: type_text(&p["schema"]),
            description: text(p, "description"),
        })
        .collect();
    let request = bodies(&op["requestBody"]);
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, response)| ResponseView {
            status: status.clone(),
            description: text(response, "description"),
            bodies: bodies(response),
        })
        .collect();
    OperationView {
        anchor: format!("op-{id}"),
        method: method.to_owned(),
        path: path.to_owned(),
        summary: translated(lang, &format!("api_docs.op.{id}"), text(op, "summary")),
        description: text(op, "description"),
        security,
        params,
        request,
        request_required: op["requestBody"]["required"].as_bool().unwrap_or(false),
        responses,
    }
}

fn bodies(holder: &Value) -> Vec<BodyView> {
    holder["content"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(content_type, content)| BodyView {
            content_type: content_type.clone(),
            kind: type_text(&content["schema"]),
        })
        .collect()
}

fn ref_name(value: &Value) -> Option<&str> {
    value.get("$ref")?.as_str()?.strip_prefix("#/components/schemas/")
}

/// A short written form of a schema: a named schema links to its entry.
fn type_text(schema: &Value) -> TypeText {
    if schema.is_null() {
        return TypeText::default();
    }
    if let Some(name) = ref_name(schema) {
        return TypeText { text: name.to_owned(), link: Some(format!("schema-{name}")) };
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = schema[key].as_array() {
            let parts: Vec<TypeText> = items.iter().map(type_text).collect();
            let link = parts.iter().find_map(|p| p.link.clone());
            let joiner = if key == "allOf" { " & " } else { " | " };
            let text = parts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(joiner);
            return TypeText { text, link };
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let words: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        return TypeText { text: words.join(" | "), link: None };
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut parts = Vec::new();
    let mut link = None;
    for t in types {
        if t == "array" {
            let inner = type_text(&schema["items"]);
            link = link.or(inner.link);
            parts.push(format!("[{}]", inner.text));
        } else {
            let format = text(schema, "format");
            parts.push(if format.is_empty() { t } else { format!("{t} ({format})") });
        }
    }
    if parts.is_empty() {
        parts.push(if schema.get("properties").is_some() { "object".into() } else { "any".into() });
    }
    TypeText { text: parts.join(" | "), link }
}

fn schema_view(name: &str, schema: &Value) -> SchemaView {
    let required: Vec<&str> =
        schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let fields = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, property)| FieldView {
            name: field.clone(),
            required: required.contains(&field.as_str()),
            kind: type_text(property),
            description: text(property, "description"),
        })
        .collect::<Vec<_>>();
    let variants: Vec<TypeText> = schema["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|variant| {
            if variant.get("properties").is_some() {
                let fields: Vec<String> = variant["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(f, p)| format!("{f}: {}", type_text(p).text))
                    .collect();
                TypeText { text: format!("{{ {} }}", fields.join(", ")), link: None }
            } else {
                type_text(variant)
            }
        })
        .collect();
    let kind = if fields.is_empty() && variants.is_empty() {
        type_text(schema)
    } else {
        TypeText::default()
    };
    SchemaView {
        anchor: format!("schema-{name}"),
        name: name.to_owned(),
        description: text(schema, "description"),
        kind,
        fields,
        variants,
    }
}
