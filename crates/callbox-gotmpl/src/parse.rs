//! The parser: a port of Go's `text/template/parse/parse.go` producing the tree of [`crate::ast`].

use std::collections::HashMap;

use crate::FieldRef;
use crate::ast::{
    Action, Arg, Branch, Builtin, Command, FuncKind, List, Node, NumValue, Pipe, TemplateCall,
    VarRef,
};
use crate::funcs::FuncsInner;
use crate::lex::{Item, ItemType, lex};

/// Maximum nesting of control structures, parenthesized pipelines and `{{block}}`s.
pub(crate) const MAX_PARSE_DEPTH: usize = 200;

/// A parse error before it is located in lines and columns.
#[derive(Debug)]
pub(crate) struct PErr {
    pub pos: usize,
    pub msg: String,
}

type PResult<T> = Result<T, PErr>;

fn perr<T>(pos: usize, msg: impl Into<String>) -> PResult<T> {
    Err(PErr {
        pos,
        msg: msg.into(),
    })
}

/// One parsed template (the main one or a `{{define}}`d one).
pub(crate) struct Tree {
    pub name: String,
    pub root: List,
    /// Number of variable slots of a frame of this template (slot 0 is `$`).
    pub nslots: u32,
}

/// Everything parsing one text produces.
pub(crate) struct Parsed {
    pub trees: Vec<Tree>,
    pub main: usize,
    pub root_fields: Vec<FieldRef>,
}

/// What `textOrAction` can produce.
enum Piece {
    Node(Node),
    End(usize),
    Else(usize),
}

/// Per-tree parser state (saved and restored around `{{define}}` and `{{block}}`).
struct TreeState {
    /// Variables visible now, most recent last: name and slot.
    vars: Vec<(String, Option<u32>)>,
    /// Variables declared by the pipeline being parsed, not yet visible.
    pending: Vec<String>,
    nslots: u32,
    range_depth: usize,
    dot_is_root: bool,
}

impl TreeState {
    fn new(dot_is_root: bool) -> TreeState {
        TreeState {
            vars: vec![("$".to_string(), Some(0))],
            pending: Vec::new(),
            nslots: 1,
            range_depth: 0,
            dot_is_root,
        }
    }
}

struct Parser<'s, 'f> {
    items: Vec<Item<'s>>,
    lex_error: Option<String>,
    cur: usize,
    funcs: &'f FuncsInner,
    st: TreeState,
    depth: usize,
    /// Open control structures (offset of their `{{`, keyword), for "missing {{end}}".
    open: Vec<(usize, &'static str)>,
    /// Offset of the `{{` of the action being parsed.
    action_pos: usize,
    trees: Vec<Tree>,
    tree_set: HashMap<String, usize>,
    root_fields: Vec<FieldRef>,
    stack_base: usize,
}

/// Parses `text` as template `name`.
pub(crate) fn parse(name: &str, text: &str, funcs: &FuncsInner) -> PResult<Parsed> {
    let break_ok = !funcs.contains("break");
    let continue_ok = !funcs.contains("continue");
    let lexed = lex(text, break_ok, continue_ok);
    let mut p = Parser {
        items: lexed.items,
        lex_error: lexed.error,
        cur: 0,
        funcs,
        st: TreeState::new(true),
        depth: 0,
        open: Vec::new(),
        action_pos: 0,
        trees: Vec::new(),
        tree_set: HashMap::new(),
        root_fields: Vec::new(),
        stack_base: crate::exec::stack_addr(),
    };
    let root = p.parse_main()?;
    let nslots = p.st.nslots;
    p.add_tree(name.to_string(), root, nslots, 0)?;
    let main = p.tree_set.get(name).copied().unwrap_or(0);
    // Resolve {{template}} calls.
    let names: HashMap<String, usize> = p.tree_set.clone();
    for tree in &mut p.trees {
        resolve_list(&mut tree.root, &names);
    }
    // Drop trees that were replaced (keep indexes stable by leaving them; they are small).
    p.root_fields.sort_by_key(|f| f.offset);
    Ok(Parsed {
        trees: p.trees,
        main,
        root_fields: p.root_fields,
    })
}

fn resolve_list(list: &mut List, names: &HashMap<String, usize>) {
    for node in list {
        match node {
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                resolve_list(&mut b.list, names);
                if let Some(e) = &mut b.else_list {
                    resolve_list(e, names);
                }
            }
            Node::Template(t) => t.target = names.get(&*t.name).copied(),
            _ => {}
        }
    }
}

/// Go's `parse.IsEmptyTree`.
fn is_empty_tree(list: &List) -> bool {
    list.iter().all(|n| match n {
        Node::Text(_, t) => t.trim().is_empty(),
        _ => false,
    })
}

impl<'s> Parser<'s, '_> {
    // ---- token stream ----

    fn item(&self, i: usize) -> Item<'s> {
        match self.items.get(i) {
            Some(it) => *it,
            None => self.items.last().copied().unwrap_or(Item {
                typ: ItemType::Eof,
                pos: 0,
                val: "",
            }),
        }
    }

    fn next(&mut self) -> Item<'s> {
        let it = self.item(self.cur);
        if self.cur < self.items.len() {
            self.cur += 1;
        }
        it
    }

    fn backup(&mut self) {
        self.cur = self.cur.saturating_sub(1);
    }

    fn peek(&self) -> Item<'s> {
        self.item(self.cur)
    }

    fn next_non_space(&mut self) -> Item<'s> {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'s> {
        let t = self.next_non_space();
        self.backup();
        t
    }

    // ---- errors ----

    fn unexpected<T>(&self, token: Item<'s>, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let msg = self
                .lex_error
                .clone()
                .unwrap_or_else(|| "lexical error".into());
            return perr(token.pos, msg);
        }
        if token.typ == ItemType::Eof {
            return self.unexpected_eof(token.pos);
        }
        perr(token.pos, format!("unexpected {token} in {context}"))
    }

    fn unexpected_eof<T>(&self, pos: usize) -> PResult<T> {
        match self.open.last() {
            Some(&(at, kw)) => perr(
                at,
                format!("unexpected EOF: missing {{{{end}}}} for this {{{{{kw}}}}}"),
            ),
            None => perr(pos, "unexpected EOF"),
        }
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item<'s>> {
        let token = self.next_non_space();
        if token.typ != expected {
            return self.unexpected(token, context);
        }
        Ok(token)
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH
            || self.stack_base.abs_diff(crate::exec::stack_addr()) > crate::exec::STACK_BUDGET
        {
            return perr(
                pos,
                format!("template nesting too deep (more than {MAX_PARSE_DEPTH} levels)"),
            );
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ---- trees ----

    fn add_tree(&mut self, name: String, root: List, nslots: u32, pos: usize) -> PResult<()> {
        match self.tree_set.get(&name).copied() {
            None => {
                self.trees.push(Tree {
                    name: name.clone(),
                    root,
                    nslots,
                });
                self.tree_set.insert(name, self.trees.len() - 1);
            }
            Some(i) if is_empty_tree(&self.trees[i].root) => {
                self.trees[i] = Tree { name, root, nslots };
            }
            Some(_) => {
                if !is_empty_tree(&root) {
                    return perr(
                        pos,
                        format!(
                            "template: multiple definition of template {}",
                            crate::fmt::quote(&name)
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn parse_main(&mut self) -> PResult<List> {
        let mut root = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let save = self.cur;
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition(delim.pos)?;
                    continue;
                }
                self.cur = save;
            }
            match self.text_or_action()? {
                Piece::End(pos) => return perr(pos, "unexpected {{end}}"),
                Piece::Else(pos) => return perr(pos, "unexpected {{else}}"),
                Piece::Node(n) => root.push(n),
            }
        }
        Ok(root)
    }

    fn with_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<(T, u32)> {
        let saved = std::mem::replace(&mut self.st, TreeState::new(false));
        let r = f(self);
        let nslots = self.st.nslots;
        self.st = saved;
        r.map(|v| (v, nslots))
    }

    fn parse_definition(&mut self, delim_pos: usize) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if token.typ != ItemType::String && token.typ != ItemType::RawString {
            return self.unexpected(token, CONTEXT);
        }
        let name = match unquote(token.val) {
            Some(s) => s,
            None => return perr(token.pos, "invalid syntax"),
        };
        self.expect(ItemType::RightDelim, CONTEXT)?;
        self.open.push((delim_pos, "define"));
        let (root, nslots) = self.with_new_tree(|p| {
            let (list, end) = p.item_list()?;
            if let Piece::Else(pos) = end {
                return perr(pos, format!("unexpected {{{{else}}}} in {CONTEXT}"));
            }
            Ok(list)
        })?;
        self.open.pop();
        self.add_tree(name, root, nslots, delim_pos)
    }

    fn item_list(&mut self) -> PResult<(List, Piece)> {
        let mut list = Vec::new();
        let end = self.item_list_into(&mut list)?;
        Ok((list, end))
    }

    /// Parses nodes into `list` up to `{{end}}` or `{{else}}`, which is returned.
    fn item_list_into(&mut self, list: &mut List) -> PResult<Piece> {
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                p @ (Piece::End(_) | Piece::Else(_)) => return Ok(p),
                Piece::Node(n) => list.push(n),
            }
        }
        let pos = self.peek().pos;
        self.unexpected_eof(pos)
    }

    fn text_or_action(&mut self) -> PResult<Piece> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Piece::Node(Node::Text(token.pos, token.val.into()))),
            ItemType::LeftDelim => {
                self.action_pos = token.pos;
                self.action()
            }
            _ => self.unexpected(token, "input"),
        }
    }

    // The functions of the recursive path (parse_control → item_list → text_or_action →
    // action → parse_control) are kept small: unoptimized builds give every temporary of a
    // function its own stack slot.

    fn action(&mut self) -> PResult<Piece> {
        let delim = self.action_pos;
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => self.block_control(delim),
            ItemType::Break | ItemType::Continue => self.break_continue(delim, token.typ),
            ItemType::Else => self.else_control(delim),
            ItemType::End => self.end_control(delim),
            ItemType::If => self.control_piece(delim, "if"),
            ItemType::Range => self.control_piece(delim, "range"),
            ItemType::Template => self.template_control(delim),
            ItemType::With => self.control_piece(delim, "with"),
            _ => {
                self.backup();
                self.action_pipeline()
            }
        }
    }

    #[inline(never)]
    fn action_pipeline(&mut self) -> PResult<Piece> {
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        let escaped_by = escaped_by(&pipe);
        Ok(Piece::Node(Node::Action(Action {
            pos: pipe.pos,
            pipe,
            escaped_by,
        })))
    }

    #[inline(never)]
    fn break_continue(&mut self, delim: usize, typ: ItemType) -> PResult<Piece> {
        let what = if typ == ItemType::Break {
            "break"
        } else {
            "continue"
        };
        let t = self.next_non_space();
        if t.typ != ItemType::RightDelim {
            return self.unexpected(t, &format!("{{{{{what}}}}}"));
        }
        if self.st.range_depth == 0 {
            return perr(delim, format!("{{{{{what}}}}} outside {{{{range}}}}"));
        }
        Ok(Piece::Node(if typ == ItemType::Break {
            Node::Break
        } else {
            Node::Continue
        }))
    }

    #[inline(never)]
    fn end_control(&mut self, delim: usize) -> PResult<Piece> {
        self.expect(ItemType::RightDelim, "end")?;
        Ok(Piece::End(delim))
    }

    fn control_piece(&mut self, delim: usize, context: &'static str) -> PResult<Piece> {
        let b = self.parse_control(delim, context)?;
        Ok(Piece::Node(match context {
            "if" => Node::If(b),
            "with" => Node::With(b),
            _ => Node::Range(b),
        }))
    }

    #[inline(never)]
    fn else_control(&mut self, delim: usize) -> PResult<Piece> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            // "{{else if ...": leave the keyword pending; parse_control handles it.
            return Ok(Piece::Else(delim));
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Piece::Else(delim))
    }

    fn parse_control(&mut self, delim: usize, context: &'static str) -> PResult<Box<Branch>> {
        self.enter(delim)?;
        let vars_len = self.st.vars.len();
        let mut branch = self.control_pipeline(delim, context)?;
        self.control_body(&mut branch, context)?;
        self.st.vars.truncate(vars_len);
        self.leave();
        Ok(branch)
    }

    #[inline(never)]
    fn control_pipeline(&mut self, delim: usize, context: &'static str) -> PResult<Box<Branch>> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        Ok(Box::new(Branch {
            pos: delim,
            pipe,
            list: Vec::new(),
            else_list: None,
        }))
    }

    fn control_body(&mut self, branch: &mut Branch, context: &'static str) -> PResult<()> {
        let saved_root = self.st.dot_is_root;
        if context == "range" {
            self.st.range_depth += 1;
        }
        if context != "if" {
            self.st.dot_is_root = false;
        }
        self.open.push((branch.pos, context));
        let next = self.item_list_into(&mut branch.list)?;
        self.st.dot_is_root = saved_root;
        if context == "range" {
            self.st.range_depth -= 1;
        }
        if let Piece::Else(else_pos) = next {
            branch.else_list = Some(self.control_else(else_pos, context)?);
        }
        self.open.pop();
        Ok(())
    }

    fn control_else(&mut self, else_pos: usize, context: &'static str) -> PResult<List> {
        let peek = self.peek().typ;
        if (context == "if" && peek == ItemType::If)
            || (context == "with" && peek == ItemType::With)
        {
            self.next();
            self.action_pos = else_pos;
            let b = self.parse_control(else_pos, context)?;
            let node = if context == "if" {
                Node::If(b)
            } else {
                Node::With(b)
            };
            return Ok(vec![node]);
        }
        let mut list = Vec::new();
        if let Piece::Else(pos) = self.item_list_into(&mut list)? {
            return perr(pos, "expected end; found {{else}}");
        }
        Ok(list)
    }

    #[inline(never)]
    fn block_control(&mut self, delim: usize) -> PResult<Piece> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        self.enter(delim)?;
        self.open.push((delim, "block"));
        let (root, nslots) = self.with_new_tree(|p| {
            let (list, end) = p.item_list()?;
            if let Piece::Else(pos) = end {
                return perr(pos, format!("unexpected {{{{else}}}} in {CONTEXT}"));
            }
            Ok(list)
        })?;
        self.open.pop();
        self.leave();
        self.add_tree(name.clone(), root, nslots, delim)?;
        Ok(Piece::Node(Node::Template(Box::new(TemplateCall {
            pos: delim,
            name: name.into(),
            target: None,
            pipe: Some(pipe),
        }))))
    }

    #[inline(never)]
    fn template_control(&mut self, delim: usize) -> PResult<Piece> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Piece::Node(Node::Template(Box::new(TemplateCall {
            pos: delim,
            name: name.into(),
            target: None,
            pipe,
        }))))
    }

    fn parse_template_name(&mut self, token: Item<'s>, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => match unquote(token.val) {
                Some(s) => Ok(s),
                None => perr(token.pos, "invalid syntax"),
            },
            _ => self.unexpected(token, context),
        }
    }

    // ---- pipelines ----

    fn lookup_var(&self, name: &str) -> Option<Option<u32>> {
        self.st
            .vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, slot)| *slot)
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let pos = token.pos;
        let mut decl_names: Vec<(usize, &'s str)> = Vec::new();
        let mut is_assign = false;
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let save = self.cur;
            self.next();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    decl_names.push((v.pos, v.val));
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    decl_names.push((v.pos, v.val));
                    if context == "range" && decl_names.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue;
                            }
                            _ => return perr(next.pos, "range can only initialize variables"),
                        }
                    }
                    return perr(next.pos, format!("too many declarations in {context}"));
                }
                _ => self.cur = save,
            }
            break;
        }
        // Resolve the declared variables; they become visible after the pipeline
        // (Go evaluates the commands before pushing them).
        let mut decl = Vec::with_capacity(decl_names.len());
        for &(vpos, name) in &decl_names {
            let slot = if is_assign {
                self.lookup_var(name).flatten()
            } else {
                let s = self.st.nslots;
                self.st.nslots += 1;
                Some(s)
            };
            decl.push(VarRef {
                pos: vpos,
                name: name.into(),
                slot,
            });
        }
        let pending_len = self.st.pending.len();
        self.st
            .pending
            .extend(decl_names.iter().map(|(_, n)| n.to_string()));
        let mut pipe = Pipe {
            pos,
            is_assign,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                self.st.pending.truncate(pending_len);
                for v in &decl {
                    self.st.vars.push((v.name.to_string(), v.slot));
                }
                pipe.decl = decl;
                self.check_pipeline(&pipe, context, token.pos)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, end_pos: usize) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return perr(end_pos, format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                a @ (Arg::Bool(..)
                | Arg::Dot(_)
                | Arg::Nil(_)
                | Arg::Number { .. }
                | Arg::Str { .. }),
            ) = c.args.first()
            {
                return perr(
                    a.pos(),
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(token, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return perr(pos, "empty command");
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let mut fields: Vec<Box<str>> = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val.get(1..).unwrap_or("").into());
        }
        Ok(Some(match node {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Var {
                var,
                fields: mut fs,
            } => {
                if &*var.name == "$"
                    && fs.is_empty()
                    && let Some(first) = fields.first()
                {
                    self.root_fields.push(FieldRef {
                        name: first.to_string(),
                        offset: var.pos,
                    });
                }
                fs.extend(fields);
                Arg::Var { var, fields: fs }
            }
            a @ (Arg::Bool(..)
            | Arg::Str { .. }
            | Arg::Number { .. }
            | Arg::Nil(_)
            | Arg::Dot(_)) => {
                return perr(
                    a.pos(),
                    format!(
                        "unexpected . after term {}",
                        crate::fmt::quote(&a.to_string())
                    ),
                );
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                let name = token.val;
                let kind = if let Some(f) = self.funcs.get(name) {
                    FuncKind::User(f.clone())
                } else if let Some(b) = Builtin::lookup(name) {
                    FuncKind::Builtin(b)
                } else {
                    return perr(
                        pos,
                        format!("function {} not defined", crate::fmt::quote(name)),
                    );
                };
                Arg::Func {
                    pos,
                    name: name.into(),
                    kind,
                }
            }
            ItemType::Dot => Arg::Dot(pos),
            ItemType::Nil => Arg::Nil(pos),
            ItemType::Variable => {
                let name = token.val;
                let slot = match self.lookup_var(name) {
                    Some(slot) => slot,
                    None if self.st.pending.iter().any(|n| n == name) => None,
                    None => {
                        return perr(
                            pos,
                            format!("undefined variable {}", crate::fmt::quote(name)),
                        );
                    }
                };
                Arg::Var {
                    var: VarRef {
                        pos,
                        name: name.into(),
                        slot,
                    },
                    fields: Vec::new(),
                }
            }
            ItemType::Field => {
                let ident = token.val.get(1..).unwrap_or("");
                if self.st.dot_is_root {
                    self.root_fields.push(FieldRef {
                        name: ident.to_string(),
                        offset: pos,
                    });
                }
                Arg::Field {
                    pos,
                    idents: vec![ident.into()],
                }
            }
            ItemType::Bool => Arg::Bool(pos, token.val == "true"),
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                match new_number(token.val, token.typ) {
                    Ok(value) => Arg::Number {
                        pos,
                        text: token.val.into(),
                        value,
                    },
                    Err(msg) => return perr(pos, msg),
                }
            }
            ItemType::LeftParen => {
                self.enter(pos)?;
                let p = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                self.leave();
                Arg::Pipe(Box::new(p))
            }
            ItemType::String | ItemType::RawString => match unquote(token.val) {
                Some(s) => Arg::Str {
                    pos,
                    quoted: token.val.into(),
                    text: s.into(),
                },
                None => return perr(pos, "invalid syntax"),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// The function whose result an action prints, if its pipeline ends with a function call.
fn escaped_by(pipe: &Pipe) -> Option<Box<str>> {
    if !pipe.decl.is_empty() {
        return None;
    }
    let last = pipe.cmds.last()?;
    match last.args.first()? {
        Arg::Func { name, .. } => Some(name.clone()),
        Arg::Pipe(p) if last.args.len() == 1 => escaped_by(p),
        _ => None,
    }
}

// ---- numbers (Go's parse.newNumber over strconv's syntax) ----

fn new_number(text: &str, typ: ItemType) -> Result<NumValue, String> {
    if typ == ItemType::CharConstant {
        let inner = text.get(1..).unwrap_or("");
        let (r, tail) = unquote_char(inner, b'\'').ok_or_else(|| "invalid syntax".to_string())?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        return Ok(NumValue::Int(r as i64));
    }
    if typ == ItemType::Complex {
        return Err(format!("complex constants are not supported: {text}"));
    }
    if let Some(t) = text.strip_suffix('i')
        && parse_float(t).is_some()
    {
        return Err(format!("complex constants are not supported: {text}"));
    }
    let u = parse_uint(text);
    let i = parse_int(text);
    if let Some(i) = i {
        let is_float_syntax = text.contains(['.', 'e', 'E', 'p', 'P']) && !is_hex_int(text);
        if is_float_syntax {
            return Ok(NumValue::Float(i as f64));
        }
        return Ok(NumValue::Int(i));
    }
    if let Some(u) = u {
        if text.contains(['.', 'e', 'E', 'p', 'P']) && !is_hex_int(text) {
            return Ok(NumValue::Float(u as f64));
        }
        return Ok(NumValue::Overflow);
    }
    match parse_float(text) {
        Some(f) => {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {}", crate::fmt::quote(text)));
            }
            Ok(NumValue::Float(f))
        }
        None => Err(format!(
            "illegal number syntax: {}",
            crate::fmt::quote(text)
        )),
    }
}

fn is_hex_int(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') && !s.contains(['p', 'P'])
}

/// Go's `strconv.underscoreOK`.
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    let mut saw = b'^';
    if let Some(&c) = b.first()
        && (c == b'-' || c == b'+')
    {
        b = &b[1..];
    }
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1] | 0x20 == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&(c | 0x20))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s0: &str) -> Option<u64> {
    let mut s = s0.as_bytes();
    if s.is_empty() {
        return None;
    }
    let mut base = 10u64;
    if s[0] == b'0' {
        if s.len() >= 3 && s[1] | 0x20 == b'b' {
            base = 2;
            s = &s[2..];
        } else if s.len() >= 3 && s[1] | 0x20 == b'o' {
            base = 8;
            s = &s[2..];
        } else if s.len() >= 3 && s[1] | 0x20 == b'x' {
            base = 16;
            s = &s[2..];
        } else {
            base = 8;
            s = &s[1..];
        }
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in s {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => (c - b'0') as u64,
            _ if (c | 0x20).is_ascii_lowercase() => ((c | 0x20) - b'a' + 10) as u64,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscore_ok(s0) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s0: &str) -> Option<i64> {
    let (neg, s) = match s0.as_bytes().first() {
        Some(b'+') => (false, &s0[1..]),
        Some(b'-') => (true, &s0[1..]),
        _ => (false, s0),
    };
    let un = parse_uint(s)?;
    if !neg {
        i64::try_from(un).ok()
    } else if un <= 1 << 63 {
        Some((un as i64).wrapping_neg())
    } else {
        None
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the syntax the lexer accepts; `None` on
/// syntax errors and on overflow (Go's ErrRange).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    match b.first() {
        Some(b'+') => i = 1,
        Some(b'-') => {
            neg = true;
            i = 1
        }
        _ => {}
    }
    if i + 2 < b.len() && b[i] == b'0' && b[i + 1] | 0x20 == b'x' {
        let f = parse_hex_float(&b[i + 2..])?;
        if s.contains('_') && !underscore_ok(s) {
            return None;
        }
        return Some(if neg { -f } else { f });
    }
    if s.contains('_') {
        if !underscore_ok(s) {
            return None;
        }
        let cleaned: String = s.chars().filter(|&c| c != '_').collect();
        return parse_dec_float(&cleaned);
    }
    parse_dec_float(s)
}

fn parse_dec_float(s: &str) -> Option<f64> {
    // Rust accepts "inf"/"nan"; the lexer never produces them, but be strict anyway.
    if !s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() { None } else { Some(f) }
}

/// Hex float mantissa and `p` exponent (after the `0x` prefix), per Go's readFloat + atofHex.
fn parse_hex_float(b: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut nd = 0i64;
    let mut nd_mant = 0i64;
    let mut dp = 0i64;
    let mut sawdot = false;
    let mut sawdigits = false;
    let mut trunc = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            i += 1;
            continue;
        }
        if c == b'.' {
            if sawdot {
                break;
            }
            sawdot = true;
            dp = nd;
            i += 1;
            continue;
        }
        let d = match c {
            b'0'..=b'9' => (c - b'0') as u64,
            _ if (b'a'..=b'f').contains(&(c | 0x20)) => ((c | 0x20) - b'a' + 10) as u64,
            _ => break,
        };
        sawdigits = true;
        if d == 0 && nd == 0 && c == b'0' {
            dp -= 1;
            i += 1;
            continue;
        }
        nd += 1;
        if nd_mant < 16 {
            mantissa = mantissa * 16 + d;
            nd_mant += 1;
        } else if d != 0 {
            trunc = true;
        }
        i += 1;
    }
    if !sawdigits {
        return None;
    }
    if !sawdot {
        dp = nd;
    }
    dp *= 4;
    nd_mant *= 4;
    if i >= b.len() || b[i] | 0x20 != b'p' {
        return None;
    }
    i += 1;
    let mut esign = 1i64;
    match b.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            esign = -1;
            i += 1
        }
        _ => {}
    }
    if !matches!(b.get(i), Some(c) if c.is_ascii_digit()) {
        return None;
    }
    let mut e = 0i64;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        if b[i] != b'_' && e < 10000 {
            e = e * 10 + (b[i] - b'0') as i64;
        }
        i += 1;
    }
    if i != b.len() {
        return None;
    }
    dp += e * esign;
    let mut exp = if mantissa != 0 { dp - nd_mant } else { 0 };
    // atofHex for float64.
    const MANTBITS: i64 = 52;
    const BIAS: i64 = -1023;
    let max_exp = (1 << 11) + BIAS - 2;
    let min_exp = BIAS + 1;
    exp += MANTBITS;
    while mantissa != 0 && mantissa >> (MANTBITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANTBITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    while mantissa > 1 && exp < min_exp - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANTBITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANTBITS == 0 {
        exp = BIAS;
    }
    if exp > max_exp {
        return None;
    }
    let bits = (mantissa & ((1 << MANTBITS) - 1))
        | ((((exp - BIAS) & ((1 << 11) - 1)) as u64) << MANTBITS);
    Some(f64::from_bits(bits))
}

// ---- strings (Go's strconv.Unquote / UnquoteChar) ----

fn unhex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// Go's `strconv.UnquoteChar`: decodes one character or escape of `s` quoted by `quote`.
/// Returns the value and the rest. A `\x`/octal escape yields a byte (`multibyte == false`).
fn unquote_char_raw(s: &str, quote: u8) -> Option<(u32, bool, &str)> {
    let b = s.as_bytes();
    let c = *b.first()?;
    if c == quote && (quote == b'\'' || quote == b'"') {
        return None;
    }
    if c >= 0x80 {
        let ch = s.chars().next()?;
        return Some((ch as u32, true, &s[ch.len_utf8()..]));
    }
    if c != b'\\' {
        return Some((c as u32, false, &s[1..]));
    }
    let c = *b.get(1)?;
    if !c.is_ascii() {
        return None;
    }
    let rest = &s[2..];
    let v = match c {
        b'a' => 7,
        b'b' => 8,
        b'f' => 12,
        b'n' => 10,
        b'r' => 13,
        b't' => 9,
        b'v' => 11,
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let rb = rest.as_bytes();
            if rb.len() < n {
                return None;
            }
            let mut v: u32 = 0;
            for &h in &rb[..n] {
                v = (v << 4) | unhex(h)?;
            }
            let rest = &rest[n..];
            if c == b'x' {
                return Some((v, false, rest));
            }
            char::from_u32(v)?;
            return Some((v, true, rest));
        }
        b'0'..=b'7' => {
            let rb = rest.as_bytes();
            if rb.len() < 2 {
                return None;
            }
            let mut v = (c - b'0') as u32;
            for &d in &rb[..2] {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = (v << 3) | (d - b'0') as u32;
            }
            if v > 255 {
                return None;
            }
            return Some((v, false, &rest[2..]));
        }
        b'\\' => b'\\' as u32,
        b'\'' | b'"' => {
            if c != quote {
                return None;
            }
            c as u32
        }
        _ => return None,
    };
    Some((v, false, rest))
}

/// UnquoteChar as used for rune constants: the value as a rune.
fn unquote_char(s: &str, quote: u8) -> Option<(u32, &str)> {
    unquote_char_raw(s, quote).map(|(v, _, rest)| (v, rest))
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` strings. Bytes produced by `\x` or
/// octal escapes that do not form valid UTF-8 are replaced by U+FFFD.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let quote = b[0];
    if *b.last()? != quote {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    match quote {
        b'`' => {
            if inner.contains('`') {
                return None;
            }
            Some(inner.replace('\r', ""))
        }
        b'"' => {
            if !inner.contains(['\\', '"', '\n']) {
                return Some(inner.to_string());
            }
            let mut buf: Vec<u8> = Vec::with_capacity(inner.len());
            let mut rest = inner;
            while !rest.is_empty() {
                if rest.starts_with('\n') {
                    return None;
                }
                let (v, multibyte, r) = unquote_char_raw(rest, b'"')?;
                rest = r;
                if v < 0x80 || !multibyte {
                    buf.push(v as u8);
                } else {
                    let ch = char::from_u32(v)?;
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                }
            }
            Some(match String::from_utf8(buf) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })
        }
        _ => None,
    }
}
