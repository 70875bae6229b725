//! Execution: a port of Go's `text/template/exec.go` and `funcs.go` over [`Value`]s.

use std::borrow::Cow;
use std::fmt::Display;

use serde_json::{Map, Value as Json};
use smallvec::SmallVec;

use crate::ast::{
    Arg, Branch, Builtin, Command, FuncKind, List, Node, NumValue, Pipe, TemplateCall, VarRef,
};
use crate::fmt::{Printer, push_float_v, quote};
use crate::funcs::DynFunc;
use crate::value::{Value, array_elem, map_is_sorted, object_get, sorted_entries};
use crate::{ExecOptions, Funcs, MissingKey, Sink, TemplateInner};

/// Maximum recursion of the executor (nested lists, pipelines and template calls),
/// whatever `max_depth` says.
pub(crate) const MAX_EXEC_NEST: usize = 1500;

/// Maximum stack that the parser's or the executor's recursion may use, whatever the
/// nesting counts say (frames are much larger in unoptimized builds: a 2 MiB thread
/// stack is enough for any template in any build).
pub(crate) const STACK_BUDGET: usize = 1536 << 10;

/// An address on the current stack (to measure how much stack recursion uses).
#[inline(always)]
pub(crate) fn stack_addr() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// An execution error before it is located in lines and columns.
pub(crate) struct XErr {
    pub pos: usize,
    pub msg: String,
}

type XResult<T> = Result<T, Box<XErr>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// How an argument is converted, after Go's parameter types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgType {
    /// `reflect.Value` parameters of most builtins: values as they are.
    Value,
    /// `interface{}` parameters (print...): missing values become nil.
    Iface,
    /// `string` parameters (printf's format).
    Str,
    /// Registered functions: values as they are, `nil` constants as nil.
    User,
}

pub(crate) struct Exec<'a, 'o> {
    t: &'a TemplateInner,
    funcs: &'a Funcs,
    same_funcs: bool,
    opts: &'o ExecOptions,
    sink: &'o mut dyn Sink,
    vars: SmallVec<[Value<'a>; 8]>,
    frame: usize,
    args: SmallVec<[Value<'a>; 8]>,
    scratch: String,
    tree: usize,
    depth: usize,
    nest: usize,
    out_bytes: usize,
    iterations: usize,
    calls: usize,
    steps: usize,
    max_steps: usize,
    stack_base: usize,
}

/// A function resolved for one call.
enum Resolved<'a> {
    Builtin(Builtin),
    User(&'a DynFunc),
}

impl<'a, 'o> Exec<'a, 'o> {
    pub(crate) fn new(
        t: &'a TemplateInner,
        funcs: &'a Funcs,
        opts: &'o ExecOptions,
        sink: &'o mut dyn Sink,
    ) -> Self {
        let same_funcs = std::sync::Arc::ptr_eq(&t.funcs, &funcs.inner);
        Exec {
            t,
            funcs,
            same_funcs,
            opts,
            sink,
            vars: SmallVec::new(),
            frame: 0,
            args: SmallVec::new(),
            scratch: String::new(),
            tree: t.main,
            depth: 0,
            nest: 0,
            out_bytes: 0,
            iterations: 0,
            calls: 0,
            steps: 0,
            max_steps: opts.max_range_iterations.saturating_mul(100).max(100_000),
            stack_base: stack_addr(),
        }
    }

    pub(crate) fn run(&mut self, data: &'a Json) -> XResult<()> {
        let Some(tree) = self.t.trees.get(self.t.main) else {
            return Ok(());
        };
        let root = match data {
            Json::Null => Value::Missing,
            d => Value::from_json(d),
        };
        self.stack_base = stack_addr();
        self.vars.clear();
        self.vars.push(root.clone());
        for _ in 1..tree.nslots {
            self.vars.push(Value::Missing);
        }
        self.frame = 0;
        self.walk_list(&root, &tree.root)?;
        Ok(())
    }

    // ------------------------------------------------------------ errors

    fn err<T>(&self, pos: usize, ctx: &dyn Display, msg: impl Display) -> XResult<T> {
        let name = self
            .t
            .trees
            .get(self.tree)
            .map(|t| t.name.as_str())
            .unwrap_or("");
        Err(Box::new(XErr {
            pos,
            msg: format!("executing {} at <{}>: {}", quote(name), ctx, msg),
        }))
    }

    fn err_plain<T>(&self, pos: usize, msg: impl Display) -> XResult<T> {
        let name = self
            .t
            .trees
            .get(self.tree)
            .map(|t| t.name.as_str())
            .unwrap_or("");
        Err(Box::new(XErr {
            pos,
            msg: format!("executing {}: {}", quote(name), msg),
        }))
    }

    // ------------------------------------------------------------ output

    fn reserve_output(&mut self, n: usize, pos: usize) -> XResult<()> {
        self.out_bytes = self.out_bytes.saturating_add(n);
        if self.out_bytes > self.opts.max_output_bytes {
            return self.err_plain(
                pos,
                format_args!(
                    "output exceeds the limit of {} bytes",
                    self.opts.max_output_bytes
                ),
            );
        }
        Ok(())
    }

    fn emit_action(&mut self, v: &Value<'a>, pos: usize, escaped_by: Option<&str>) -> XResult<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let s: &str = match v {
            Value::Str(s) => s,
            Value::Missing | Value::Nil => "<no value>",
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            Value::Float(f) => {
                // Integral values below 1e6 print as integers with %v (1e6 gives "1e+06").
                if f.fract() == 0.0 && f.abs() < 1e6 && !(*f == 0.0 && f.is_sign_negative()) {
                    let buf = itoa_buf(*f as i64);
                    let s = buf.as_str();
                    let r = self.reserve_output(s.len(), pos);
                    if r.is_ok() {
                        self.sink.action(s, escaped_by);
                    }
                    self.scratch = scratch;
                    return r;
                }
                push_float_v(&mut scratch, *f);
                &scratch
            }
            Value::Int(i) => {
                let buf = itoa_buf(*i);
                let s = buf.as_str();
                let r = self.reserve_output(s.len(), pos);
                if r.is_ok() {
                    self.sink.action(s, escaped_by);
                }
                self.scratch = scratch;
                return r;
            }
            Value::Array(_) | Value::Object(_) => {
                let mut p = Printer::new(&mut scratch, self.opts.max_output_bytes);
                if p.value(v, 'v').is_err() {
                    return self.err_plain(
                        pos,
                        format_args!(
                            "output exceeds the limit of {} bytes",
                            self.opts.max_output_bytes
                        ),
                    );
                }
                &scratch
            }
        };
        let r = self.reserve_output(s.len(), pos);
        if r.is_ok() {
            self.sink.action(s, escaped_by);
        }
        self.scratch = scratch;
        r
    }

    // ------------------------------------------------------------ walking

    fn enter(&mut self, pos: usize) -> XResult<()> {
        self.nest += 1;
        if self.nest > MAX_EXEC_NEST || self.stack_base.abs_diff(stack_addr()) > STACK_BUDGET {
            return self.err_plain(
                pos,
                format_args!("template nesting too deep (more than {MAX_EXEC_NEST} levels)"),
            );
        }
        Ok(())
    }

    fn step(&mut self, pos: usize) -> XResult<()> {
        self.steps += 1;
        if self.steps > self.max_steps {
            return self.err_plain(
                pos,
                format_args!("execution exceeds the limit of {} steps", self.max_steps),
            );
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value<'a>, list: &'a List) -> XResult<Flow> {
        for node in list {
            let f = self.walk(dot, node)?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_nested(&mut self, dot: &Value<'a>, list: &'a List, pos: usize) -> XResult<Flow> {
        self.enter(pos)?;
        let r = self.walk_list(dot, list);
        self.nest -= 1;
        r
    }

    fn walk(&mut self, dot: &Value<'a>, node: &'a Node) -> XResult<Flow> {
        match node {
            Node::Text(pos, t) => {
                self.reserve_output(t.len(), *pos)?;
                self.sink.text(t);
            }
            Node::Action(a) => {
                self.step(a.pos)?;
                let v = self.eval_pipeline(dot, &a.pipe)?;
                if a.pipe.decl.is_empty() {
                    self.emit_action(&v, a.pos, a.escaped_by.as_deref())?;
                }
            }
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, b),
            Node::Template(t) => self.walk_template(dot, t)?,
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, is_with: bool, dot: &Value<'a>, b: &'a Branch) -> XResult<Flow> {
        self.step(b.pos)?;
        let val = self.eval_pipeline(dot, &b.pipe)?;
        if val.is_truthy() {
            if is_with {
                self.walk_nested(&val, &b.list, b.pos)
            } else {
                self.walk_nested(dot, &b.list, b.pos)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_nested(dot, e, b.pos)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn set_slot(&mut self, var: &VarRef, v: Value<'a>) -> XResult<()> {
        let Some(slot) = var.slot else {
            return self.err(
                var.pos,
                &var.name,
                format_args!("undefined variable: {}", var.name),
            );
        };
        match self.vars.get_mut(self.frame + slot as usize) {
            Some(s) => {
                *s = v;
                Ok(())
            }
            None => self.err(var.pos, &var.name, "internal error: bad variable slot"),
        }
    }

    fn one_iteration(&mut self, b: &'a Branch, index: Value<'a>, elem: Value<'a>) -> XResult<Flow> {
        self.iterations += 1;
        if self.iterations > self.opts.max_range_iterations {
            return self.err_plain(
                b.pos,
                format_args!(
                    "range iterations exceed the limit of {}",
                    self.opts.max_range_iterations
                ),
            );
        }
        match b.pipe.decl.as_slice() {
            [] => {}
            [v] => self.set_slot(v, elem.clone())?,
            [i, v, ..] => {
                self.set_slot(i, index)?;
                self.set_slot(v, elem.clone())?;
            }
        }
        self.walk_nested(&elem, &b.list, b.pos)
    }

    fn walk_range(&mut self, dot: &Value<'a>, b: &'a Branch) -> XResult<Flow> {
        self.step(b.pos)?;
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mut ran = false;
        match &val {
            Value::Array(a) if !a.is_empty() => {
                ran = true;
                for i in 0..a.len() {
                    let elem = array_elem(a, i).unwrap_or(Value::Missing);
                    if self.one_iteration(b, Value::Int(i as i64), elem)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Object(m) if !m.is_empty() => {
                ran = true;
                match m {
                    Cow::Borrowed(m) => {
                        let m: &'a Map<String, Json> = m;
                        if map_is_sorted(m) {
                            for (k, v) in m {
                                let key = Value::Str(Cow::Borrowed(k.as_str()));
                                if self.one_iteration(b, key, Value::from_json(v))? == Flow::Break {
                                    break;
                                }
                            }
                        } else {
                            for (k, v) in sorted_entries(m) {
                                let key = Value::Str(Cow::Borrowed(k.as_str()));
                                if self.one_iteration(b, key, Value::from_json(v))? == Flow::Break {
                                    break;
                                }
                            }
                        }
                    }
                    Cow::Owned(m) => {
                        for (k, v) in sorted_entries(m) {
                            let key = Value::from_string(k.clone());
                            let elem = Value::from_json_owned(v.clone());
                            if self.one_iteration(b, key, elem)? == Flow::Break {
                                break;
                            }
                        }
                    }
                }
            }
            Value::Int(n) => {
                if b.pipe.decl.len() > 1 {
                    return self.err(
                        b.pipe.pos,
                        &b.pipe,
                        format_args!("can't use {n} to iterate over more than one variable"),
                    );
                }
                if *n > 0 {
                    ran = true;
                    for i in 0..*n {
                        if self.one_iteration(b, Value::Int(i), Value::Int(i))? == Flow::Break {
                            break;
                        }
                    }
                }
            }
            Value::Array(_) | Value::Object(_) | Value::Missing | Value::Nil => {}
            other => {
                let mut s = String::new();
                crate::fmt::sprint_value(&mut s, other);
                return self.err(
                    b.pipe.pos,
                    &b.pipe,
                    format_args!("range can't iterate over {s}"),
                );
            }
        }
        if !ran && let Some(e) = &b.else_list {
            return self.walk_nested(dot, e, b.pos);
        }
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &Value<'a>, t: &'a TemplateCall) -> XResult<()> {
        self.step(t.pos)?;
        let ctx = crate::ast::describe_node_template(t);
        let Some(target) = t.target else {
            return self.err(
                t.pos,
                &ctx,
                format_args!("template {} not defined", quote(&t.name)),
            );
        };
        if self.depth >= self.opts.max_depth {
            return self.err(
                t.pos,
                &ctx,
                format_args!("exceeded maximum template depth ({})", self.opts.max_depth),
            );
        }
        self.calls += 1;
        if self.calls > self.opts.max_range_iterations {
            return self.err(
                t.pos,
                &ctx,
                format_args!(
                    "template calls exceed the limit of {}",
                    self.opts.max_range_iterations
                ),
            );
        }
        let new_dot = match &t.pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        let Some(tree) = self.t.trees.get(target) else {
            return self.err(t.pos, &ctx, "internal error: bad template index");
        };
        self.enter(t.pos)?;
        let saved_frame = self.frame;
        let saved_tree = self.tree;
        let base = self.vars.len();
        self.vars
            .resize(base + tree.nslots.max(1) as usize, Value::Missing);
        self.vars[base] = new_dot.clone();
        self.frame = base;
        self.tree = target;
        self.depth += 1;
        let r = self.walk_list(&new_dot, &tree.root);
        self.depth -= 1;
        self.tree = saved_tree;
        self.frame = saved_frame;
        self.vars.truncate(base);
        self.nest -= 1;
        r.map(|_| ())
    }

    // ------------------------------------------------------------ pipelines

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> XResult<Value<'a>> {
        self.enter(pipe.pos)?;
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            let mut v = self.eval_command(dot, cmd, value.take())?;
            if matches!(v, Value::Nil) {
                v = Value::Missing;
            }
            value = Some(v);
        }
        self.nest -= 1;
        let value = value.unwrap_or(Value::Missing);
        for var in &pipe.decl {
            self.set_slot(var, value.clone())?;
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command, has_final: bool) -> XResult<()> {
        if (cmd.args.len() > 1 || has_final)
            && let Some(first) = cmd.args.first()
        {
            return self.err(
                first.pos(),
                first,
                format_args!("can't give argument to non-function {first}"),
            );
        }
        Ok(())
    }

    fn ideal_constant(
        &self,
        pos: usize,
        text: &str,
        v: NumValue,
        ctx: &dyn Display,
    ) -> XResult<Value<'a>> {
        match v {
            NumValue::Int(i) => Ok(Value::Int(i)),
            NumValue::Float(f) => Ok(Value::Float(f)),
            NumValue::Overflow => self.err(pos, ctx, format_args!("{text} overflows int")),
        }
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        fin: Option<Value<'a>>,
    ) -> XResult<Value<'a>> {
        let Some(first) = cmd.args.first() else {
            return self.err(cmd.pos, cmd, "empty command");
        };
        let has_args = cmd.args.len() > 1 || fin.is_some();
        match first {
            Arg::Field { pos, idents } => self.eval_field_chain(dot, idents, has_args, *pos, first),
            Arg::Chain { pos, node, fields } => {
                let recv = self.eval_chain_head(dot, node, *pos, first)?;
                self.eval_field_chain(&recv, fields, has_args, *pos, first)
            }
            Arg::Func { pos, name, kind } => {
                self.eval_function(dot, *pos, name, kind, Some(cmd), &cmd.args[1..], fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, fin.is_some())?;
                self.eval_pipeline(dot, p)
            }
            Arg::Var { var, fields } => {
                let v = self.var_value(var)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, fin.is_some())?;
                    return Ok(v);
                }
                self.eval_field_chain(&v, fields, has_args, var.pos, first)
            }
            Arg::Bool(_, b) => {
                self.not_a_function(cmd, fin.is_some())?;
                Ok(Value::Bool(*b))
            }
            Arg::Dot(_) => {
                self.not_a_function(cmd, fin.is_some())?;
                Ok(dot.clone())
            }
            Arg::Nil(pos) => {
                self.not_a_function(cmd, fin.is_some())?;
                self.err(*pos, first, "nil is not a command")
            }
            Arg::Number { pos, text, value } => {
                self.not_a_function(cmd, fin.is_some())?;
                self.ideal_constant(*pos, text, *value, first)
            }
            Arg::Str { text, .. } => {
                self.not_a_function(cmd, fin.is_some())?;
                Ok(Value::Str(Cow::Borrowed(text)))
            }
        }
    }

    fn var_value(&self, var: &VarRef) -> XResult<Value<'a>> {
        let Some(slot) = var.slot else {
            return self.err(
                var.pos,
                &var.name,
                format_args!("undefined variable: {}", var.name),
            );
        };
        match self.vars.get(self.frame + slot as usize) {
            Some(v) => Ok(v.clone()),
            None => self.err(var.pos, &var.name, "internal error: bad variable slot"),
        }
    }

    fn eval_chain_head(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        pos: usize,
        ctx: &Arg,
    ) -> XResult<Value<'a>> {
        match node {
            Arg::Nil(_) => self.err(
                pos,
                ctx,
                format_args!("indirection through explicit nil in {ctx}"),
            ),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Func { pos, name, kind } => {
                self.eval_function(dot, *pos, name, kind, None, &[], None)
            }
            other => self.eval_arg(dot, ArgType::Value, other),
        }
    }

    /// Evaluates `.A.B.C` on `receiver`; `has_args` tells whether the last field was given
    /// arguments (an error for map keys).
    fn eval_field_chain(
        &self,
        receiver: &Value<'a>,
        idents: &[Box<str>],
        has_args: bool,
        pos: usize,
        ctx: &Arg,
    ) -> XResult<Value<'a>> {
        let n = idents.len();
        let Some((last, init)) = idents.split_last() else {
            return Ok(receiver.clone());
        };
        if n == 1 {
            return self.eval_field(receiver, last, has_args, false, pos, ctx);
        }
        let mut cur = self.eval_field(receiver, &init[0], false, false, pos, ctx)?;
        for name in &init[1..] {
            cur = self.eval_field(&cur, name, false, true, pos, ctx)?;
        }
        self.eval_field(&cur, last, has_args, true, pos, ctx)
    }

    fn eval_field(
        &self,
        receiver: &Value<'a>,
        name: &str,
        has_args: bool,
        from_container: bool,
        pos: usize,
        ctx: &Arg,
    ) -> XResult<Value<'a>> {
        match receiver {
            Value::Object(m) => {
                if has_args {
                    return self.err(
                        pos,
                        ctx,
                        format_args!("{name} is not a method but has arguments"),
                    );
                }
                match object_get(m, name) {
                    Some(v) => Ok(v),
                    None => match self.opts.missing_key {
                        MissingKey::Default => Ok(Value::Missing),
                        MissingKey::Zero => Ok(Value::Nil),
                        MissingKey::Error => self.err(
                            pos,
                            ctx,
                            format_args!("map has no entry for key {}", quote(name)),
                        ),
                    },
                }
            }
            Value::Missing => {
                if self.opts.missing_key == MissingKey::Error {
                    return self.err(
                        pos,
                        ctx,
                        format_args!("nil data; no entry for key {}", quote(name)),
                    );
                }
                Ok(Value::Missing)
            }
            Value::Nil => self.err(
                pos,
                ctx,
                format_args!("nil pointer evaluating interface {{}}.{name}"),
            ),
            other => self.err(
                pos,
                ctx,
                format_args!(
                    "can't evaluate field {name} in type {}",
                    if from_container {
                        "interface {}"
                    } else {
                        other.go_type()
                    }
                ),
            ),
        }
    }

    // ------------------------------------------------------------ arguments

    fn validate(
        &self,
        v: Value<'a>,
        ty: ArgType,
        n: &dyn Display,
        pos: usize,
    ) -> XResult<Value<'a>> {
        match ty {
            ArgType::Value | ArgType::User => Ok(v),
            ArgType::Iface => Ok(if matches!(v, Value::Missing) {
                Value::Nil
            } else {
                v
            }),
            ArgType::Str => match v {
                Value::Str(_) => Ok(v),
                Value::Missing => self.err(pos, n, "invalid value; expected string"),
                Value::Nil => self.err(
                    pos,
                    n,
                    "wrong type for value; expected string; got interface {}",
                ),
                other => self.err(
                    pos,
                    n,
                    format_args!(
                        "wrong type for value; expected string; got {}",
                        other.go_type()
                    ),
                ),
            },
        }
    }

    fn eval_arg(&mut self, dot: &Value<'a>, ty: ArgType, n: &'a Arg) -> XResult<Value<'a>> {
        let pos = n.pos();
        let v = match n {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match ty {
                    ArgType::Value => Ok(Value::Missing),
                    ArgType::Iface | ArgType::User => Ok(Value::Nil),
                    ArgType::Str => self.err(pos, n, "cannot assign nil to string"),
                };
            }
            Arg::Field { idents, .. } => self.eval_field_chain(dot, idents, false, pos, n)?,
            Arg::Var { var, fields } => {
                let v = self.var_value(var)?;
                if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(&v, fields, false, pos, n)?
                }
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Func { pos, name, kind } => {
                self.eval_function(dot, *pos, name, kind, None, &[], None)?
            }
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_chain_head(dot, node, pos, n)?;
                self.eval_field_chain(&recv, fields, false, pos, n)?
            }
            Arg::Bool(_, b) => {
                if ty == ArgType::Str {
                    return self.err(pos, n, format_args!("expected string; found {n}"));
                }
                return Ok(Value::Bool(*b));
            }
            Arg::Number { text, value, .. } => {
                if ty == ArgType::Str {
                    return self.err(pos, n, format_args!("expected string; found {n}"));
                }
                return self.ideal_constant(pos, text, *value, n);
            }
            Arg::Str { text, .. } => return Ok(Value::Str(Cow::Borrowed(text))),
        };
        self.validate(v, ty, n, pos)
    }

    // ------------------------------------------------------------ functions

    #[allow(clippy::too_many_arguments)]
    fn eval_function(
        &mut self,
        dot: &Value<'a>,
        pos: usize,
        name: &'a str,
        kind: &'a FuncKind,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> XResult<Value<'a>> {
        self.step(pos)?;
        let resolved = if self.same_funcs {
            match kind {
                FuncKind::Builtin(b) => Resolved::Builtin(*b),
                FuncKind::User(f) => Resolved::User(&**f),
            }
        } else if let Some(f) = self.funcs.inner.get(name) {
            Resolved::User(&**f)
        } else if let Some(b) = Builtin::lookup(name) {
            Resolved::Builtin(b)
        } else {
            return self.err(
                pos,
                &name,
                format_args!("{} is not a defined function", quote(name)),
            );
        };
        let call_pos = cmd.map_or(pos, |c| c.pos);
        match resolved {
            Resolved::User(f) => {
                let base = self.args.len();
                for a in args {
                    let v = self.eval_arg(dot, ArgType::User, a)?;
                    self.args.push(v);
                }
                if let Some(f) = fin {
                    self.args.push(f);
                }
                // Like Go's safeCall, a function that panics fails the call.
                let call = std::panic::AssertUnwindSafe(|| f(&self.args[base..]));
                let r = std::panic::catch_unwind(call).unwrap_or_else(|payload| {
                    Err(match payload.downcast_ref::<&str>() {
                        Some(s) => format!("panic: {s}"),
                        None => match payload.downcast_ref::<String>() {
                            Some(s) => format!("panic: {s}"),
                            None => "panic".to_string(),
                        },
                    })
                });
                self.args.truncate(base);
                match r {
                    Ok(v) => Ok(v),
                    Err(e) => self.call_err(call_pos, cmd, name, e),
                }
            }
            Resolved::Builtin(b) => self.call_builtin(dot, b, pos, name, cmd, args, fin),
        }
    }

    fn call_err<T>(
        &self,
        pos: usize,
        cmd: Option<&Command>,
        name: &str,
        e: impl Display,
    ) -> XResult<T> {
        match cmd {
            Some(c) => self.err(pos, c, format_args!("error calling {name}: {e}")),
            None => self.err(pos, &name, format_args!("error calling {name}: {e}")),
        }
    }

    fn arity(
        &self,
        pos: usize,
        name: &str,
        args: usize,
        has_final: bool,
        want: usize,
        variadic: bool,
    ) -> XResult<()> {
        let num_in = args + usize::from(has_final);
        if variadic {
            if num_in < want {
                return self.err(
                    pos,
                    &name,
                    format_args!(
                        "wrong number of args for {name}: want at least {want} got {args}"
                    ),
                );
            }
        } else if num_in != want {
            return self.err(
                pos,
                &name,
                format_args!("wrong number of args for {name}: want {want} got {num_in}"),
            );
        }
        Ok(())
    }

    /// Evaluates all arguments (and the final value) of a builtin onto the argument stack.
    fn push_args(
        &mut self,
        dot: &Value<'a>,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
        ty: ArgType,
    ) -> XResult<usize> {
        let base = self.args.len();
        for a in args {
            let v = self.eval_arg(dot, ty, a)?;
            self.args.push(v);
        }
        if let Some(f) = fin {
            let f = if ty == ArgType::Iface && matches!(f, Value::Missing) {
                Value::Nil
            } else {
                f
            };
            self.args.push(f);
        }
        Ok(base)
    }

    fn string_result(&mut self, s: String, pos: usize) -> XResult<Value<'a>> {
        if s.len() > self.opts.max_output_bytes {
            return self.limit_err(pos);
        }
        Ok(Value::Str(Cow::Owned(s)))
    }

    fn limit_err<T>(&self, pos: usize) -> XResult<T> {
        self.err_plain(
            pos,
            format_args!(
                "output exceeds the limit of {} bytes",
                self.opts.max_output_bytes
            ),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn call_builtin(
        &mut self,
        dot: &Value<'a>,
        b: Builtin,
        pos: usize,
        name: &'a str,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> XResult<Value<'a>> {
        let site = Site {
            dot,
            b,
            pos,
            name,
            cmd,
            args,
            call_pos: cmd.map_or(pos, |c| c.pos),
        };
        // One small function per builtin keeps stack frames small on the recursive path.
        match b {
            Builtin::And | Builtin::Or => self.bi_and_or(&site, fin),
            Builtin::Not => self.bi_not(&site, fin),
            Builtin::Len => self.bi_len(&site, fin),
            Builtin::Index | Builtin::Slice => self.bi_index_slice(&site, fin),
            Builtin::Eq => self.bi_eq(&site, fin),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => {
                self.bi_compare(&site, fin)
            }
            Builtin::Call => self.bi_call(&site, fin),
            Builtin::Print | Builtin::Println => self.bi_print(&site, fin),
            Builtin::Printf => self.bi_printf(&site, fin),
            Builtin::Html | Builtin::Js | Builtin::Urlquery => self.bi_escape(&site, fin),
        }
    }

    fn site_err<T>(&self, s: &Site<'a, '_>, e: impl Display) -> XResult<T> {
        self.call_err(s.call_pos, s.cmd, s.name, e)
    }

    /// The single argument of a one-argument builtin.
    fn single_arg(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, false)?;
        match s.args.first() {
            Some(a) => self.eval_arg(s.dot, ArgType::Value, a),
            None => Ok(fin.unwrap_or(Value::Missing)),
        }
    }

    fn bi_and_or(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, true)?;
        let is_or = s.b == Builtin::Or;
        let mut v = Value::Missing;
        for a in s.args {
            v = self.eval_arg(s.dot, ArgType::Value, a)?;
            if v.is_truthy() == is_or {
                return Ok(v);
            }
        }
        if let Some(f) = fin {
            v = f;
        }
        Ok(v)
    }

    fn bi_not(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        let v = self.single_arg(s, fin)?;
        Ok(Value::Bool(!v.is_truthy()))
    }

    fn bi_len(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        let v = self.single_arg(s, fin)?;
        let n = match &v {
            Value::Str(x) => x.len(),
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            Value::Missing => {
                return self.site_err(s, "reflect: call of reflect.Value.Type on zero Value");
            }
            Value::Nil => return self.site_err(s, "len of nil pointer"),
            other => return self.site_err(s, format_args!("len of type {}", other.go_type())),
        };
        Ok(Value::Int(n as i64))
    }

    fn bi_index_slice(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, true)?;
        let base = self.push_args(s.dot, s.args, fin, ArgType::Value)?;
        let mut list: SmallVec<[Value<'a>; 4]> = self.args.drain(base..).collect();
        let item = std::mem::replace(&mut list[0], Value::Missing);
        let r = if s.b == Builtin::Index {
            index_value(item, &list[1..])
        } else {
            slice_value(item, &list[1..])
        };
        match r {
            Ok(v) => Ok(v),
            Err(e) => self.site_err(s, e),
        }
    }

    fn bi_eq(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, true)?;
        let base = self.push_args(s.dot, s.args, fin, ArgType::Value)?;
        let r = eq(&self.args[base], &self.args[base + 1..]);
        self.args.truncate(base);
        match r {
            Ok(t) => Ok(Value::Bool(t)),
            Err(e) => self.site_err(s, e),
        }
    }

    fn bi_compare(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 2, false)?;
        let base = self.push_args(s.dot, s.args, fin, ArgType::Value)?;
        let (a1, a2) = (&self.args[base], &self.args[base + 1]);
        let r = match s.b {
            Builtin::Ne => eq(a1, std::slice::from_ref(a2)).map(|t| !t),
            Builtin::Lt => lt(a1, a2),
            Builtin::Le => le(a1, a2),
            Builtin::Gt => le(a1, a2).map(|t| !t),
            _ => lt(a1, a2).map(|t| !t),
        };
        self.args.truncate(base);
        match r {
            Ok(t) => Ok(Value::Bool(t)),
            Err(e) => self.site_err(s, e),
        }
    }

    fn bi_call(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, true)?;
        let base = self.push_args(s.dot, s.args, fin, ArgType::Value)?;
        let f = std::mem::replace(&mut self.args[base], Value::Missing);
        self.args.truncate(base);
        let msg = match f {
            Value::Missing | Value::Nil => "call of nil".to_string(),
            other => format!("non-function of type {}", other.go_type()),
        };
        self.site_err(s, msg)
    }

    fn bi_print(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        let base = self.push_args(s.dot, s.args, fin, ArgType::Iface)?;
        let mut out = String::new();
        let mut p = Printer::new(&mut out, self.opts.max_output_bytes);
        let r = if s.b == Builtin::Print {
            p.print(&self.args[base..])
        } else {
            p.println(&self.args[base..])
        };
        self.args.truncate(base);
        if r.is_err() {
            return self.limit_err(s.call_pos);
        }
        self.string_result(out, s.call_pos)
    }

    fn bi_printf(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        self.arity(s.pos, s.name, s.args.len(), fin.is_some(), 1, true)?;
        let base = self.args.len();
        let (format, rest, fin) = match s.args.split_first() {
            Some((a, rest)) => (self.eval_arg(s.dot, ArgType::Str, a)?, rest, fin),
            None => {
                let f = fin.unwrap_or(Value::Missing);
                (
                    self.validate(f, ArgType::Str, &s.name, s.pos)?,
                    s.args,
                    None,
                )
            }
        };
        self.args.push(format);
        self.push_args(s.dot, rest, fin, ArgType::Iface)?;
        let fmt_str = self.args[base].as_str().unwrap_or("");
        let mut out = String::with_capacity(fmt_str.len() + 16 * (self.args.len() - base));
        let mut p = Printer::new(&mut out, self.opts.max_output_bytes);
        let r = p.printf(fmt_str, &self.args[base + 1..]);
        self.args.truncate(base);
        if r.is_err() {
            return self.limit_err(s.call_pos);
        }
        self.string_result(out, s.call_pos)
    }

    fn bi_escape(&mut self, s: &Site<'a, '_>, fin: Option<Value<'a>>) -> XResult<Value<'a>> {
        let base = self.push_args(s.dot, s.args, fin, ArgType::Iface)?;
        let mut joined = String::new();
        let input: &str = match &self.args[base..] {
            [Value::Str(x)] => x,
            list => {
                let printable: SmallVec<[Value<'_>; 4]> = list
                    .iter()
                    .map(|v| {
                        if v.is_nil() {
                            Value::Str(Cow::Borrowed("<no value>"))
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                let mut p = Printer::new(&mut joined, self.opts.max_output_bytes);
                if p.print(&printable).is_err() {
                    self.args.truncate(base);
                    return self.limit_err(s.call_pos);
                }
                &joined
            }
        };
        let mut out = String::with_capacity(input.len() + 8);
        match s.b {
            Builtin::Html => crate::escape::html_escape(&mut out, input),
            Builtin::Js => crate::escape::js_escape(&mut out, input),
            _ => crate::escape::url_query_escape(&mut out, input),
        }
        self.args.truncate(base);
        self.string_result(out, s.call_pos)
    }
}

/// A builtin call being evaluated.
struct Site<'a, 'd> {
    dot: &'d Value<'a>,
    b: Builtin,
    pos: usize,
    name: &'a str,
    cmd: Option<&'a Command>,
    args: &'a [Arg],
    call_pos: usize,
}

/// Decimal digits of an integer in a stack buffer.
struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
}

fn itoa_buf(i: i64) -> ItoaBuf {
    let mut buf = [0u8; 24];
    let mut pos = buf.len();
    let neg = i < 0;
    let mut u = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    ItoaBuf { buf, start: pos }
}

// ---------------------------------------------------------------- builtins on values

fn index_arg(index: &Value<'_>, cap: usize) -> Result<usize, String> {
    match index {
        Value::Int(x) => {
            if *x < 0 || *x as u64 > cap as u64 {
                return Err(format!("index out of range: {x}"));
            }
            Ok(*x as usize)
        }
        Value::Missing | Value::Nil => Err("cannot index slice/array with nil".to_string()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.go_type()
        )),
    }
}

fn index_value<'a>(item: Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    let mut item = match item {
        Value::Missing | Value::Nil => return Err("index of untyped nil".to_string()),
        v => v,
    };
    for index in indexes {
        item = match item {
            Value::Missing | Value::Nil => return Err("index of nil pointer".to_string()),
            Value::Array(a) => {
                let x = index_arg(index, a.len())?;
                match array_elem(&a, x) {
                    Some(v) => v,
                    None => return Err("reflect: slice index out of range".to_string()),
                }
            }
            Value::Str(s) => {
                let x = index_arg(index, s.len())?;
                match s.as_bytes().get(x) {
                    Some(&b) => Value::Int(b as i64),
                    None => return Err("reflect: string index out of range".to_string()),
                }
            }
            Value::Object(m) => {
                let key = match index {
                    Value::Str(k) => k,
                    Value::Missing | Value::Nil => {
                        return Err("value is nil; should be of type string".to_string());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.go_type()
                        ));
                    }
                };
                object_get(&m, key).unwrap_or(Value::Nil)
            }
            other => return Err(format!("can't index item of type {}", other.go_type())),
        };
    }
    Ok(item)
}

fn slice_value<'a>(item: Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    if item.is_nil() {
        return Err("slice of untyped nil".to_string());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let cap = match &item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_string());
            }
            s.len()
        }
        Value::Array(a) => a.len(),
        other => return Err(format!("can't slice item of type {}", other.go_type())),
    };
    let mut idx = [0, cap, 0];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    let (i, j) = (idx[0], idx[1]);
    Ok(match item {
        Value::Str(Cow::Borrowed(s)) => match s.get(i..j) {
            Some(sub) => Value::Str(Cow::Borrowed(sub)),
            None => Value::from_string(String::from_utf8_lossy(&s.as_bytes()[i..j]).into_owned()),
        },
        Value::Str(Cow::Owned(s)) => match s.get(i..j) {
            Some(sub) => Value::from_string(sub.to_string()),
            None => Value::from_string(String::from_utf8_lossy(&s.as_bytes()[i..j]).into_owned()),
        },
        Value::Array(Cow::Borrowed(a)) => Value::Array(Cow::Borrowed(&a[i..j])),
        Value::Array(Cow::Owned(a)) => Value::Array(Cow::Owned(a[i..j].to_vec())),
        _ => Value::Missing,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not a basic kind: arrays, objects, nil and missing values.
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value<'_>) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

/// Go's reflect kind class for canCompare: 0 invalid (nil/missing), 1 slice, 2 map, 3 other.
fn reflect_kind(v: &Value<'_>) -> u8 {
    match v {
        Value::Missing | Value::Nil => 0,
        Value::Array(_) => 1,
        Value::Object(_) => 2,
        _ => 3,
    }
}

const ERR_BAD_COMPARISON_TYPE: &str = "invalid type for comparison";
const ERR_BAD_COMPARISON: &str = "incompatible types for comparison";

fn sprint_s(v: &Value<'_>) -> String {
    let mut s = String::new();
    let mut p = Printer::new(&mut s, 1 << 20);
    let _ = p.value(v, 's');
    s
}

fn sprint_v(v: &Value<'_>) -> String {
    let mut s = String::new();
    crate::fmt::sprint_value(&mut s, v);
    s
}

fn eq(arg1: &Value<'_>, arg2: &[Value<'_>]) -> Result<bool, String> {
    if arg2.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = basic_kind(arg1);
    for arg in arg2 {
        let k2 = basic_kind(arg);
        let truth = if k1 != k2 {
            if !arg1.is_nil() && !arg.is_nil() {
                return Err(ERR_BAD_COMPARISON.to_string());
            }
            false
        } else {
            match (arg1, arg) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                _ => {
                    let (r1, r2) = (reflect_kind(arg1), reflect_kind(arg));
                    if r1 != r2 && r1 != 0 && r2 != 0 {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            sprint_s(arg1),
                            arg1.go_type(),
                            arg.go_type(),
                            sprint_v(arg)
                        ));
                    }
                    if arg1.is_nil() || arg.is_nil() {
                        arg1.is_nil() == arg.is_nil()
                    } else {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            sprint_s(arg),
                            arg.go_type()
                        ));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(arg1: &Value<'_>, arg2: &Value<'_>) -> Result<bool, String> {
    let k1 = basic_kind(arg1);
    if k1 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.to_string());
    }
    let k2 = basic_kind(arg2);
    if k2 == Kind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.to_string());
    }
    if k1 != k2 {
        return Err(ERR_BAD_COMPARISON.to_string());
    }
    match (arg1, arg2) {
        (Value::Float(a), Value::Float(b)) => Ok(a < b),
        (Value::Int(a), Value::Int(b)) => Ok(a < b),
        (Value::Str(a), Value::Str(b)) => Ok(a < b),
        _ => Err(ERR_BAD_COMPARISON_TYPE.to_string()),
    }
}

fn le(arg1: &Value<'_>, arg2: &Value<'_>) -> Result<bool, String> {
    let less = lt(arg1, arg2)?;
    if less {
        return Ok(true);
    }
    eq(arg1, std::slice::from_ref(arg2))
}
