//! A compiled `FileDescriptorProto` written back as `.proto` text: the stored form of a
//! Protobuf schema, whichever way it was submitted (text, or a base64 serialized
//! descriptor as confluent-kafka-python's serializer sends it).
//!
//! Type names are written fully qualified (`.pkg.Msg`), which every parser reads back to
//! the same descriptor; map fields are written as `map<K, V>` (their entry messages are
//! not written), proto3 `optional` fields as such (their synthetic oneofs are not
//! written). Options beyond the common file, message, field and enum options (custom
//! options, which a descriptor compiled without their definitions cannot name) are not
//! kept.

use std::fmt::Write;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
};

/// The file as `.proto` text.
pub fn render(f: &FileDescriptorProto) -> String {
    let mut out = String::new();
    let syntax = f.syntax.as_deref().unwrap_or("proto2");
    let proto3 = syntax == "proto3";
    let _ = writeln!(out, "syntax = \"{syntax}\";");
    if let Some(p) = f.package.as_deref().filter(|p| !p.is_empty()) {
        let _ = writeln!(out, "package {p};");
    }
    for (i, d) in f.dependency.iter().enumerate() {
        let kind = if f.public_dependency.contains(&(i as i32)) {
            "public "
        } else if f.weak_dependency.contains(&(i as i32)) {
            "weak "
        } else {
            ""
        };
        let _ = writeln!(out, "import {kind}{};", quote(d));
    }
    if let Some(o) = &f.options {
        let mut opt = |name: &str, v: String| {
            let _ = writeln!(out, "option {name} = {v};");
        };
        if let Some(v) = &o.java_package {
            opt("java_package", quote(v));
        }
        if let Some(v) = &o.java_outer_classname {
            opt("java_outer_classname", quote(v));
        }
        if let Some(v) = o.java_multiple_files {
            opt("java_multiple_files", v.to_string());
        }
        if let Some(v) = o.java_string_check_utf8 {
            opt("java_string_check_utf8", v.to_string());
        }
        if let Some(v) = o.optimize_for {
            let name = match v {
                2 => "CODE_SIZE",
                3 => "LITE_RUNTIME",
                _ => "SPEED",
            };
            opt("optimize_for", name.to_string());
        }
        if let Some(v) = &o.go_package {
            opt("go_package", quote(v));
        }
        if let Some(v) = o.cc_enable_arenas {
            opt("cc_enable_arenas", v.to_string());
        }
        if let Some(v) = &o.objc_class_prefix {
            opt("objc_class_prefix", quote(v));
        }
        if let Some(v) = &o.csharp_namespace {
            opt("csharp_namespace", quote(v));
        }
        if let Some(v) = &o.swift_prefix {
            opt("swift_prefix", quote(v));
        }
        if let Some(v) = &o.php_namespace {
            opt("php_namespace", quote(v));
        }
        if let Some(v) = &o.ruby_package {
            opt("ruby_package", quote(v));
        }
        if let Some(v) = o.deprecated {
            opt("deprecated", v.to_string());
        }
    }
    for m in &f.message_type {
        out.push('\n');
        message(&mut out, m, proto3, 0);
    }
    for e in &f.enum_type {
        out.push('\n');
        enumeration(&mut out, e, 0);
    }
    for s in &f.service {
        out.push('\n');
        service(&mut out, s);
    }
    extensions(&mut out, &f.extension, proto3, 0);
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(q, "\\{:03o}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn message(out: &mut String, m: &DescriptorProto, proto3: bool, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "message {} {{", m.name());
    let inner = depth + 1;
    if let Some(o) = &m.options {
        if o.deprecated == Some(true) {
            indent(out, inner);
            out.push_str("option deprecated = true;\n");
        }
        if o.message_set_wire_format == Some(true) {
            indent(out, inner);
            out.push_str("option message_set_wire_format = true;\n");
        }
    }
    // Fields in a real oneof are written inside it, at the first of its fields.
    let real_oneof = |f: &FieldDescriptorProto| {
        f.oneof_index
            .filter(|_| !f.proto3_optional())
            .map(|i| i as usize)
    };
    let mut written_oneofs = Vec::new();
    for f in &m.field {
        match real_oneof(f) {
            Some(i) => {
                if written_oneofs.contains(&i) {
                    continue;
                }
                written_oneofs.push(i);
                indent(out, inner);
                let name = m.oneof_decl.get(i).map(|o| o.name()).unwrap_or("oneof");
                let _ = writeln!(out, "oneof {name} {{");
                for g in m.field.iter().filter(|g| real_oneof(g) == Some(i)) {
                    field(out, m, g, proto3, inner + 1, true);
                }
                indent(out, inner);
                out.push_str("}\n");
            }
            None => field(out, m, f, proto3, inner, false),
        }
    }
    for n in m
        .nested_type
        .iter()
        .filter(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()))
    {
        message(out, n, proto3, inner);
    }
    for e in &m.enum_type {
        enumeration(out, e, inner);
    }
    extensions(out, &m.extension, proto3, inner);
    for r in &m.extension_range {
        indent(out, inner);
        let _ = writeln!(
            out,
            "extensions {};",
            range(i64::from(r.start()), i64::from(r.end()), 536_870_912)
        );
    }
    reserved(
        out,
        m.reserved_range
            .iter()
            .map(|r| (i64::from(r.start()), i64::from(r.end()))),
        &m.reserved_name,
        inner,
        536_870_912,
    );
    indent(out, depth);
    out.push_str("}\n");
}

/// `start to end-1` (descriptor ranges are end-exclusive), `max` when it reaches `limit`.
fn range(start: i64, end: i64, limit: i64) -> String {
    if end - 1 == start {
        start.to_string()
    } else if end >= limit {
        format!("{start} to max")
    } else {
        format!("{start} to {}", end - 1)
    }
}

fn reserved(
    out: &mut String,
    ranges: impl Iterator<Item = (i64, i64)>,
    names: &[String],
    depth: usize,
    limit: i64,
) {
    let ranges: Vec<String> = ranges.map(|(s, e)| range(s, e, limit)).collect();
    if !ranges.is_empty() {
        indent(out, depth);
        let _ = writeln!(out, "reserved {};", ranges.join(", "));
    }
    if !names.is_empty() {
        indent(out, depth);
        let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
        let _ = writeln!(out, "reserved {};", names.join(", "));
    }
}

fn scalar(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => "",
    }
}

fn type_name(f: &FieldDescriptorProto) -> String {
    match f.r#type() {
        Type::Group | Type::Message | Type::Enum => f.type_name().to_string(),
        t => scalar(t).to_string(),
    }
}

/// protoc's default JSON name: underscores dropped, the letter after one upper-cased.
fn default_json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn field(
    out: &mut String,
    m: &DescriptorProto,
    f: &FieldDescriptorProto,
    proto3: bool,
    depth: usize,
    in_oneof: bool,
) {
    indent(out, depth);
    // A map field: repeated, of a nested entry message with map_entry set.
    let entry = (f.label() == Label::Repeated && f.r#type() == Type::Message)
        .then(|| {
            let short = f.type_name().rsplit('.').next().unwrap_or_default();
            m.nested_type
                .iter()
                .find(|n| n.name() == short && n.options.as_ref().is_some_and(|o| o.map_entry()))
        })
        .flatten();
    if let Some(e) = entry {
        let key = e.field.iter().find(|x| x.number() == 1);
        let value = e.field.iter().find(|x| x.number() == 2);
        let (k, v) = (
            key.map(type_name).unwrap_or_default(),
            value.map(type_name).unwrap_or_default(),
        );
        let _ = write!(out, "map<{k}, {v}> {} = {}", f.name(), f.number());
    } else {
        let label = if in_oneof {
            ""
        } else {
            match f.label() {
                Label::Repeated => "repeated ",
                Label::Required => "required ",
                Label::Optional if !proto3 || f.proto3_optional() => "optional ",
                Label::Optional => "",
            }
        };
        let _ = write!(out, "{label}{} {} = {}", type_name(f), f.name(), f.number());
    }
    let mut opts: Vec<String> = Vec::new();
    if let Some(d) = &f.default_value {
        let v = match f.r#type() {
            Type::String => quote(d),
            Type::Bytes => format!("\"{d}\""),
            _ => d.clone(),
        };
        opts.push(format!("default = {v}"));
    }
    if let Some(j) = &f.json_name {
        if *j != default_json_name(f.name()) {
            opts.push(format!("json_name = {}", quote(j)));
        }
    }
    if let Some(o) = &f.options {
        if let Some(p) = o.packed {
            opts.push(format!("packed = {p}"));
        }
        if o.deprecated == Some(true) {
            opts.push("deprecated = true".to_string());
        }
        if o.lazy == Some(true) {
            opts.push("lazy = true".to_string());
        }
    }
    if !opts.is_empty() {
        let _ = write!(out, " [{}]", opts.join(", "));
    }
    out.push_str(";\n");
}

fn enumeration(out: &mut String, e: &EnumDescriptorProto, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "enum {} {{", e.name());
    let inner = depth + 1;
    if let Some(o) = &e.options {
        if o.allow_alias == Some(true) {
            indent(out, inner);
            out.push_str("option allow_alias = true;\n");
        }
        if o.deprecated == Some(true) {
            indent(out, inner);
            out.push_str("option deprecated = true;\n");
        }
    }
    for v in &e.value {
        indent(out, inner);
        let deprecated = v
            .options
            .as_ref()
            .is_some_and(|o| o.deprecated == Some(true));
        let _ = writeln!(
            out,
            "{} = {}{};",
            v.name(),
            v.number(),
            if deprecated {
                " [deprecated = true]"
            } else {
                ""
            }
        );
    }
    // Enum reserved ranges are end-inclusive.
    reserved(
        out,
        e.reserved_range
            .iter()
            .map(|r| (i64::from(r.start()), i64::from(r.end()) + 1)),
        &e.reserved_name,
        inner,
        i64::from(i32::MAX) + 1,
    );
    indent(out, depth);
    out.push_str("}\n");
}

fn service(out: &mut String, s: &ServiceDescriptorProto) {
    let _ = writeln!(out, "service {} {{", s.name());
    for m in &s.method {
        let _ = writeln!(
            out,
            "  rpc {}({}{}) returns ({}{});",
            m.name(),
            if m.client_streaming() { "stream " } else { "" },
            m.input_type(),
            if m.server_streaming() { "stream " } else { "" },
            m.output_type()
        );
    }
    out.push_str("}\n");
}

fn extensions(out: &mut String, ext: &[FieldDescriptorProto], proto3: bool, depth: usize) {
    let mut extendees: Vec<&str> = Vec::new();
    for f in ext {
        if !extendees.contains(&f.extendee()) {
            extendees.push(f.extendee());
        }
    }
    for x in extendees {
        indent(out, depth);
        let _ = writeln!(out, "extend {x} {{");
        for f in ext.iter().filter(|f| f.extendee() == x) {
            field(
                out,
                &DescriptorProto::default(),
                f,
                proto3,
                depth + 1,
                false,
            );
        }
        indent(out, depth);
        out.push_str("}\n");
    }
}
