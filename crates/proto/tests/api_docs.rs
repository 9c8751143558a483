//! `docs/api.md` is generated from the comments of `proto/tributary/v1/*.proto`, through the
//! descriptor set the build writes (with source info). This test regenerates it and fails
//! when the committed file differs; `UPDATE_API_DOCS=1` writes it instead:
//!
//! ```sh
//! UPDATE_API_DOCS=1 cargo nextest run --release -p tributary-proto api_docs
//! ```

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    FileDescriptorSet,
};

// Field numbers in descriptor.proto, which make up source-info paths.
const FILE_MESSAGE: i32 = 4;
const FILE_ENUM: i32 = 5;
const FILE_SERVICE: i32 = 6;
const FILE_SYNTAX: i32 = 12;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED: i32 = 3;
const MESSAGE_ENUM: i32 = 4;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// The comments of one file, by source-info path.
struct Comments(HashMap<Vec<i32>, String>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Comments {
        let info = file
            .source_code_info
            .as_ref()
            .expect("the descriptor set carries source info");
        let mut map = HashMap::new();
        for loc in &info.location {
            let mut text = loc.leading_comments().to_owned();
            if loc.path == [FILE_SYNTAX] {
                // The file's header comment sits above `syntax`, detached or not.
                text = loc
                    .leading_detached_comments
                    .iter()
                    .map(String::as_str)
                    .chain([loc.leading_comments()])
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            if text.trim().is_empty() {
                text = loc.trailing_comments().to_owned();
            }
            if !text.trim().is_empty() {
                map.insert(loc.path.clone(), clean(&text));
            }
        }
        Comments(map)
    }

    fn get(&self, path: &[i32]) -> &str {
        self.0.get(path).map_or("", String::as_str)
    }
}

/// A proto comment as Markdown: lines unindented by one space, paragraphs kept.
fn clean(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A comment inside a table cell: one line.
fn cell(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split('\n').collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("<br>")
        .replace('|', "\\|")
}

fn anchor(name: &str) -> String {
    name.to_lowercase().replace('.', "")
}

/// A type name, linked when it is ours: `.tributary.v1.Topic` -> [Topic](#topic).
fn type_link(name: &str) -> String {
    match name.strip_prefix(".tributary.v1.") {
        Some(local) => format!("[`{local}`](#{})", anchor(local)),
        None => format!("`{}`", name.trim_start_matches('.')),
    }
}

fn field_type(f: &FieldDescriptorProto) -> String {
    let base = match f.r#type() {
        Type::Message | Type::Enum => type_link(f.type_name()),
        t => format!(
            "`{}`",
            t.as_str_name().trim_start_matches("TYPE_").to_lowercase()
        ),
    };
    match (f.label(), f.proto3_optional()) {
        (Label::Repeated, _) => format!("repeated {base}"),
        (_, true) => format!("optional {base}"),
        _ => base,
    }
}

/// A `###` heading and the comment under it, if any.
fn heading(out: &mut String, title: &str, doc: &str) {
    writeln!(out, "### {title}\n").unwrap();
    if !doc.is_empty() {
        writeln!(out, "{doc}\n").unwrap();
    }
}

fn render_enum(out: &mut String, c: &Comments, e: &EnumDescriptorProto, path: &[i32], name: &str) {
    heading(out, name, c.get(path));
    writeln!(out, "| value | number | description |\n| --- | --- | --- |").unwrap();
    for (i, v) in e.value.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([ENUM_VALUE, i as i32]);
        writeln!(
            out,
            "| `{}` | {} | {} |",
            v.name(),
            v.number(),
            cell(c.get(&p))
        )
        .unwrap();
    }
    out.push('\n');
}

fn render_message(out: &mut String, c: &Comments, m: &DescriptorProto, path: &[i32], name: &str) {
    heading(out, name, c.get(path));
    if m.field.is_empty() {
        writeln!(out, "No fields.\n").unwrap();
    } else {
        writeln!(
            out,
            "| field | number | type | description |\n| --- | --- | --- | --- |"
        )
        .unwrap();
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([MESSAGE_FIELD, i as i32]);
            writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                f.name(),
                f.number(),
                field_type(f),
                cell(c.get(&p))
            )
            .unwrap();
        }
        out.push('\n');
    }
    for (i, n) in m.nested_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_NESTED, i as i32]);
        render_message(out, c, n, &p, &format!("{name}.{}", n.name()));
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        let mut p = path.to_vec();
        p.extend([MESSAGE_ENUM, i as i32]);
        render_enum(out, c, e, &p, &format!("{name}.{}", e.name()));
    }
}

fn render(set: &FileDescriptorSet) -> String {
    let mut out = String::from(
        "# gRPC API reference\n\n\
         <!-- Generated from proto/tributary/v1/*.proto by crates/proto/tests/api_docs.rs.\n     \
         Do not edit: change the proto comments, then run\n     \
         UPDATE_API_DOCS=1 cargo nextest run --release -p tributary-proto api_docs -->\n\n\
         Package `tributary.v1`. The servers also offer the standard `grpc.health.v1.Health` \
         service and server reflection (`grpc.reflection.v1` and `v1alpha`), without \
         credentials, so `grpcurl` needs no proto files:\n\n\
         ```sh\n\
         grpcurl -plaintext 127.0.0.1:7070 list\n\
         grpcurl -plaintext 127.0.0.1:7070 grpc.health.v1.Health/Check\n\
         grpcurl -plaintext -H \"authorization: Bearer $(cat data/admin.token)\" \\\n    \
         127.0.0.1:7070 tributary.v1.Admin/GetCluster\n\
         ```\n\n",
    );
    let mut files: Vec<&FileDescriptorProto> = set
        .file
        .iter()
        .filter(|f| f.package() == "tributary.v1")
        .collect();
    // Services first (admin, producer, consumer), then the shared records.
    let order = ["admin", "producer", "consumer", "records"];
    files.sort_by_key(|f| {
        order
            .iter()
            .position(|o| f.name().ends_with(&format!("/{o}.proto")))
            .unwrap_or(order.len())
    });
    out.push_str("Files: ");
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("[`{}`](#{})", f.name(), anchor(&f.name().replace('/', ""))))
        .collect();
    out.push_str(&list.join(", "));
    out.push_str(".\n\n");
    for f in files {
        let c = Comments::of(f);
        writeln!(out, "## {}\n", f.name()).unwrap();
        let header = c.get(&[FILE_SYNTAX]);
        if !header.is_empty() {
            writeln!(out, "{header}\n").unwrap();
        }
        for (si, s) in f.service.iter().enumerate() {
            let title = format!("service {}", s.name());
            heading(&mut out, &title, c.get(&[FILE_SERVICE, si as i32]));
            writeln!(
                out,
                "| RPC | request | response | description |\n| --- | --- | --- | --- |"
            )
            .unwrap();
            for (mi, m) in s.method.iter().enumerate() {
                let stream = |yes: bool| if yes { "stream " } else { "" };
                writeln!(
                    out,
                    "| `{}` | {}{} | {}{} | {} |",
                    m.name(),
                    stream(m.client_streaming()),
                    type_link(m.input_type()),
                    stream(m.server_streaming()),
                    type_link(m.output_type()),
                    cell(c.get(&[FILE_SERVICE, si as i32, SERVICE_METHOD, mi as i32]))
                )
                .unwrap();
            }
            out.push('\n');
        }
        for (i, m) in f.message_type.iter().enumerate() {
            render_message(&mut out, &c, m, &[FILE_MESSAGE, i as i32], m.name());
        }
        for (i, e) in f.enum_type.iter().enumerate() {
            render_enum(&mut out, &c, e, &[FILE_ENUM, i as i32], e.name());
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn api_docs_are_current() {
    let set = FileDescriptorSet::decode(tributary_proto::FILE_DESCRIPTOR_SET).unwrap();
    let text = render(&set);
    assert!(text.contains("### service Admin") && text.contains("### RecordBatch"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    if std::env::var_os("UPDATE_API_DOCS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/api.md is not current: regenerate it with\n  \
         UPDATE_API_DOCS=1 cargo nextest run --release -p tributary-proto api_docs"
    );
}
