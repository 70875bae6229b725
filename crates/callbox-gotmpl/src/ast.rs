//! The parsed form of a template: a compact tree in the spirit of Go's `parse/node.go`,
//! with variables resolved to frame slots and function names resolved at parse time.

use std::fmt;
use std::sync::Arc;

use crate::funcs::DynFunc;

/// A list of nodes (the body of a template or of a control structure).
pub(crate) type List = Vec<Node>;

/// A node of a template body.
pub(crate) enum Node {
    /// Plain text (at this offset), copied to the output.
    Text(usize, Box<str>),
    /// `{{pipeline}}`.
    Action(Action),
    /// `{{if}}`.
    If(Box<Branch>),
    /// `{{with}}`.
    With(Box<Branch>),
    /// `{{range}}`.
    Range(Box<Branch>),
    /// `{{template "name" pipeline}}` (also the call half of `{{block}}`).
    Template(Box<TemplateCall>),
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// `{{pipeline}}`.
pub(crate) struct Action {
    pub pos: usize,
    pub pipe: Pipe,
    /// The function that ends the pipeline, if any (see [`crate::Sink::action`]).
    pub escaped_by: Option<Box<str>>,
}

/// `{{if}}`, `{{with}}` or `{{range}}`.
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// `{{template "name" pipeline}}`.
pub(crate) struct TemplateCall {
    pub pos: usize,
    pub name: Box<str>,
    /// Index of the called tree, resolved once parsing is done.
    pub target: Option<usize>,
    pub pipe: Option<Pipe>,
}

/// A pipeline, possibly with variable declarations.
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<VarRef>,
    pub cmds: Vec<Command>,
}

/// A variable reference resolved to its slot in the template's frame.
pub(crate) struct VarRef {
    pub pos: usize,
    pub name: Box<str>,
    /// `None` for an assignment to a variable that is not declared (an exec error, as in Go).
    pub slot: Option<u32>,
}

/// A command: a function call, a field access with arguments, or a simple value.
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A numeric constant as Go's `idealConstant` sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NumValue {
    Int(i64),
    Float(f64),
    /// Only representable as uint64: "overflows int" when evaluated.
    Overflow,
}

/// A function referenced by a command.
pub(crate) enum FuncKind {
    Builtin(Builtin),
    User(Arc<DynFunc>),
}

/// Go's builtin template functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    And,
    Call,
    Html,
    Index,
    Slice,
    Js,
    Len,
    Not,
    Or,
    Print,
    Printf,
    Println,
    Urlquery,
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
    Ne,
}

impl Builtin {
    pub(crate) fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "call" => Builtin::Call,
            "html" => Builtin::Html,
            "index" => Builtin::Index,
            "slice" => Builtin::Slice,
            "js" => Builtin::Js,
            "len" => Builtin::Len,
            "not" => Builtin::Not,
            "or" => Builtin::Or,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "urlquery" => Builtin::Urlquery,
            "eq" => Builtin::Eq,
            "ge" => Builtin::Ge,
            "gt" => Builtin::Gt,
            "le" => Builtin::Le,
            "lt" => Builtin::Lt,
            "ne" => Builtin::Ne,
            _ => return None,
        })
    }
}

/// An argument (or the first word) of a command.
pub(crate) enum Arg {
    /// `.X.Y`.
    Field { pos: usize, idents: Vec<Box<str>> },
    /// `(pipeline).X.Y`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<Box<str>>,
    },
    /// `$x.Y.Z`.
    Var { var: VarRef, fields: Vec<Box<str>> },
    /// `.`.
    Dot(usize),
    /// `nil`.
    Nil(usize),
    /// `true` / `false`.
    Bool(usize, bool),
    /// A number, with its original text.
    Number {
        pos: usize,
        text: Box<str>,
        value: NumValue,
    },
    /// A string constant, quoted as written and unquoted.
    Str {
        pos: usize,
        quoted: Box<str>,
        text: Box<str>,
    },
    /// `(pipeline)`.
    Pipe(Box<Pipe>),
    /// A function name.
    Func {
        pos: usize,
        name: Box<str>,
        kind: FuncKind,
    },
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Func { pos, .. } => *pos,
            Arg::Var { var, .. } => var.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

// Display renders nodes the way Go's String methods do; used in error messages.

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for id in idents {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = &**node {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for id in fields {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Var { var, fields } => {
                f.write_str(&var.name)?;
                for id in fields {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
            Arg::Func { name, .. } => f.write_str(name),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let Arg::Pipe(p) = arg {
                write!(f, "({p})")?;
            } else {
                write!(f, "{arg}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(&v.name)?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The error context of a `{{template}}` node.
pub(crate) fn describe_node_template(t: &TemplateCall) -> String {
    match &t.pipe {
        Some(p) => format!("{{{{template {} {}}}}}", crate::fmt::quote(&t.name), p),
        None => format!("{{{{template {}}}}}", crate::fmt::quote(&t.name)),
    }
}
