//! Jinja rendering of a job's command, args and env with minijinja, compatible with the Python
//! Jinja templates lava users write.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, FixedOffset, Local, Utc};
use minijinja::machinery::{ast, WhitespaceConfig};
use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Environment, Error, State, UndefinedBehavior};
use serde_json::{Map, Value as Json};

use super::pytime::{self, PyDateTime};
use crate::spec::job::Request;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("template error in `{field}`: {message}")]
pub struct RenderError {
    pub field: String,
    pub message: String,
}

/// The name templates call for `+` / `-` after rewriting.
const BINOP: &str = "__lava_binop";

/// minijinja has no operator overloading, so `a + b` / `a - b` are rewritten to a function
/// call that knows Python's datetime arithmetic and otherwise does what minijinja would.
fn binop(op: &str, a: Value, b: Value) -> Result<Value, Error> {
    if let Some(r) = pytime::arith(op, &a, &b) {
        return r;
    }
    static PLAIN: OnceLock<Environment<'static>> = OnceLock::new();
    let env = PLAIN.get_or_init(Environment::new);
    let src = if op == "+" { "a + b" } else { "a - b" };
    let expr = env.compile_expression(src)?;
    expr.eval(minijinja::context! { a => a, b => b })
}

struct Edit {
    start: usize,
    end: usize,
    op: &'static str,
    left_end: usize,
    right: (usize, usize),
}

fn span(e: &ast::Expr) -> (usize, usize) {
    let s = e.span();
    (s.start_offset as usize, s.end_offset as usize)
}

fn walk_args(args: &[ast::CallArg], out: &mut Vec<Edit>) {
    for a in args {
        match a {
            ast::CallArg::Pos(e)
            | ast::CallArg::Kwarg(_, e)
            | ast::CallArg::PosSplat(e)
            | ast::CallArg::KwargSplat(e) => walk_expr(e, out),
        }
    }
}

fn walk_expr(e: &ast::Expr, out: &mut Vec<Edit>) {
    use ast::Expr::*;
    match e {
        Var(_) | Const(_) => {}
        Slice(s) => {
            walk_expr(&s.expr, out);
            for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                walk_expr(x, out);
            }
        }
        UnaryOp(u) => walk_expr(&u.expr, out),
        BinOp(b) => {
            walk_expr(&b.left, out);
            walk_expr(&b.right, out);
            let op = match b.op {
                ast::BinOpKind::Add => "+",
                ast::BinOpKind::Sub => "-",
                _ => return,
            };
            // The node's own span is exact (it includes any parentheses); an operand's span
            // may stop short of a closing parenthesis, so the operator is found by scanning.
            let whole = b.span();
            let (start, end) = (whole.start_offset as usize, whole.end_offset as usize);
            let (_, left_end) = span(&b.left);
            out.push(Edit {
                start,
                end,
                op,
                left_end,
                right: (0, end),
            });
        }
        Compare(c) => {
            walk_expr(&c.expr, out);
            for o in &c.ops {
                walk_expr(&o.expr, out);
            }
        }
        IfExpr(i) => {
            walk_expr(&i.test_expr, out);
            walk_expr(&i.true_expr, out);
            if let Some(f) = &i.false_expr {
                walk_expr(f, out);
            }
        }
        Filter(f) => {
            if let Some(x) = &f.expr {
                walk_expr(x, out);
            }
            walk_args(&f.args, out);
        }
        Test(t) => {
            walk_expr(&t.expr, out);
            walk_args(&t.args, out);
        }
        GetAttr(g) => walk_expr(&g.expr, out),
        GetItem(g) => {
            walk_expr(&g.expr, out);
            walk_expr(&g.subscript_expr, out);
        }
        Call(c) => {
            walk_expr(&c.expr, out);
            walk_args(&c.args, out);
        }
        List(l) => l.items.iter().for_each(|i| walk_expr(i, out)),
        Map(m) => m
            .keys
            .iter()
            .chain(m.values.iter())
            .for_each(|i| walk_expr(i, out)),
    }
}

fn walk_stmts(stmts: &[ast::Stmt], out: &mut Vec<Edit>) {
    for s in stmts {
        walk_stmt(s, out);
    }
}

fn walk_stmt(s: &ast::Stmt, out: &mut Vec<Edit>) {
    use ast::Stmt::*;
    match s {
        Template(t) => walk_stmts(&t.children, out),
        EmitExpr(e) => walk_expr(&e.expr, out),
        ForLoop(f) => {
            walk_expr(&f.iter, out);
            if let Some(x) = &f.filter_expr {
                walk_expr(x, out);
            }
            walk_stmts(&f.body, out);
            walk_stmts(&f.else_body, out);
        }
        IfCond(i) => {
            walk_expr(&i.expr, out);
            walk_stmts(&i.true_body, out);
            walk_stmts(&i.false_body, out);
        }
        WithBlock(w) => {
            for (_, v) in &w.assignments {
                walk_expr(v, out);
            }
            walk_stmts(&w.body, out);
        }
        Set(x) => walk_expr(&x.expr, out),
        SetBlock(x) => walk_stmts(&x.body, out),
        AutoEscape(x) => walk_stmts(&x.body, out),
        FilterBlock(x) => walk_stmts(&x.body, out),
        _ => {}
    }
}

fn emit(src: &str, range: (usize, usize), edits: &[Edit]) -> String {
    let mut out = String::new();
    let mut pos = range.0;
    for e in edits {
        if e.start >= pos && e.end <= range.1 && e.start >= range.0 {
            let op_char = e.op.as_bytes()[0];
            let op_pos = src.as_bytes()[e.left_end..e.end]
                .iter()
                .position(|&c| c == op_char)
                .map(|i| i + e.left_end)
                .unwrap_or(e.left_end);
            out.push_str(&src[pos..e.start]);
            out.push_str(&format!(
                "{BINOP}({:?}, {}, {})",
                e.op,
                emit(src, (e.start, op_pos), edits).trim(),
                emit(src, (op_pos + 1, e.right.1), edits).trim()
            ));
            pos = e.end;
        }
    }
    out.push_str(&src[pos..range.1]);
    out
}

/// Rewrite every `+` / `-` in a template into a `__lava_binop` call.
pub fn rewrite_arithmetic(src: &str) -> Result<String, Error> {
    if !src.contains('+') && !src.contains('-') {
        return Ok(src.to_string());
    }
    let tree = minijinja::machinery::parse(
        src,
        "<template>",
        Default::default(),
        WhitespaceConfig::default(),
    )?;
    let mut edits = Vec::new();
    walk_stmt(&tree, &mut edits);
    if edits.is_empty() {
        return Ok(src.to_string());
    }
    // Outermost first, so nested operations are emitted inside their parents.
    edits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    Ok(emit(src, (0, src.len()), &edits))
}

/// `utils.datetime`: callable like the class, with its class methods.
#[derive(Debug)]
struct DateTimeClass;

impl Object for DateTimeClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _s: &State, args: &[Value]) -> Result<Value, Error> {
        pytime::make_datetime(args)
    }

    fn call_method(
        self: &Arc<Self>,
        _s: &State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "now" => Ok(PyDateTime::naive(Local::now().naive_local()).value()),
            "utcnow" => Ok(PyDateTime::naive(Utc::now().naive_utc()).value()),
            "fromtimestamp" | "utcfromtimestamp" => {
                // Same as the instance method.
                let any = PyDateTime::naive(Utc::now().naive_utc());
                Value::from_object(any).call_method(_s, method, args)
            }
            _ => Err(pytime::no_method("datetime", method)),
        }
    }
}

#[derive(Debug)]
struct DateClass;

impl Object for DateClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _s: &State, args: &[Value]) -> Result<Value, Error> {
        pytime::make_date(args)
    }

    fn call_method(
        self: &Arc<Self>,
        _s: &State,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "today" => Ok(pytime::PyDate(Local::now().date_naive()).value()),
            _ => Err(pytime::no_method("date", method)),
        }
    }
}

fn utils() -> Value {
    let mut m = std::collections::BTreeMap::new();
    m.insert("datetime", Value::from_object(DateTimeClass));
    m.insert("date", Value::from_object(DateClass));
    m.insert(
        "timedelta",
        Value::from_function(|args: &[Value]| pytime::make_timedelta(args)),
    );
    m.insert(
        "uuid",
        Value::from_function(|| uuid::Uuid::new_v4().to_string()),
    );
    Value::from(m)
}

/// Renders one job's templates.
pub struct Renderer {
    env: Environment<'static>,
    ctx: Value,
}

/// The start time lava reports: `job.ts_start`, else now.
pub fn start_time(ts_start: Option<&str>) -> Result<DateTime<FixedOffset>, RenderError> {
    match ts_start {
        Some(s) => DateTime::parse_from_rfc3339(s).map_err(|e| RenderError {
            field: "job.ts_start".into(),
            message: format!("`{s}` is not an RFC 3339 time: {e}"),
        }),
        None => Ok(Local::now().fixed_offset()),
    }
}

impl Renderer {
    pub fn new(req: &Request, start: DateTime<FixedOffset>) -> Renderer {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(BINOP, binop);

        let ustart = start.with_timezone(&Utc);
        let mut job: Map<String, Json> = req.job.clone();
        job.insert("realm".into(), Json::String(req.realm_name.clone()));
        job.insert("run_id".into(), Json::String(req.run_id.clone()));
        job.insert("state".into(), Json::Object(req.state.clone()));
        job.insert("ts_start".into(), Json::String(start.to_rfc3339()));
        job.insert("ts_ustart".into(), Json::String(ustart.to_rfc3339()));
        let vars = req.parameters.vars.clone().unwrap_or_default();
        let ctx = minijinja::context! {
            globals => Value::from_serialize(&req.globals),
            job => Value::from_serialize(&job),
            realm => Value::from_serialize(&req.realm),
            start => PyDateTime::naive_at(start).value(),
            ustart => PyDateTime::naive_at(ustart.fixed_offset()).value(),
            state => Value::from_serialize(&req.state),
            utils => utils(),
            vars => Value::from_serialize(&vars),
        };
        Renderer { env, ctx }
    }

    /// Render one template; `field` names it in errors (e.g. `job.parameters.args[1]`).
    pub fn render(&self, field: &str, template: &str) -> Result<String, RenderError> {
        let fail = |e: Error| RenderError {
            field: field.to_string(),
            message: e.to_string(),
        };
        let src = rewrite_arithmetic(template).map_err(fail)?;
        self.env.render_str(&src, self.ctx.clone()).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn renderer() -> Renderer {
        let doc = json!({
            "job": {"job_id": "demo/j", "run_id": "r-1", "payload": "x", "owner": "me",
                    "parameters": {"docker": "d", "vars": {"cmd": "date", "n": 3}},
                    "globals": {"g": "G"}, "state": {"s1": "S"},
                    "ts_start": "2026-11-23T10:00:00+11:00"},
            "realm": {"realm": "dev", "s3_temp": "s3://b/t"}
        });
        let req = Request::from_value(&doc, false).unwrap();
        let start = start_time(req.ts_start.as_deref()).unwrap();
        Renderer::new(&req, start)
    }

    fn r(t: &str) -> String {
        renderer()
            .render("t", t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn python_isms() {
        assert_eq!(
            r("{{ start.strftime('%Y-%m-%d %H:%M') }}"),
            "2026-11-23 10:00"
        );
        assert_eq!(r("{{ ustart.isoformat() }}"), "2026-11-22T23:00:00");
        assert_eq!(r("{{ ustart }}"), "2026-11-22 23:00:00");
        assert_eq!(
            r("{{ ustart.year }}-{{ ustart.month }}-{{ ustart.day }} {{ ustart.hour }}"),
            "2026-11-22 23"
        );
        assert_eq!(r("{{ realm.realm }} {{ realm['realm'] }} {{ vars.cmd }} {{ globals.g }} {{ state.s1 }}"), "dev dev date G S");
        assert_eq!(
            r("{{ job.job_id }} {{ job.run_id }} {{ job.realm }}"),
            "demo/j r-1 dev"
        );
        assert_eq!(
            r("{{ utils.datetime(year=2026, month=1, day=1).strftime('%A') }}"),
            "Thursday"
        );
        assert_eq!(
            r("{{ utils.date(year=1970, month=1, day=1) }}"),
            "1970-01-01"
        );
        assert_eq!(
            r("{{ utils.datetime(2026, 2, 28, 12) + utils.timedelta(days=1) }}"),
            "2026-03-01 12:00:00"
        );
        assert_eq!(
            r("{{ ustart + utils.timedelta(days=1) }}"),
            "2026-11-23 23:00:00"
        );
        assert_eq!(
            r("{{ (ustart - utils.timedelta(hours=23)).date() }}"),
            "2026-11-22"
        );
        assert_eq!(
            r("{{ (utils.datetime(2026,1,2) - utils.datetime(2026,1,1)).total_seconds() }}"),
            "86400.0"
        );
        assert_eq!(
            r("{{ utils.timedelta(days=1, seconds=61) }}"),
            "1 day, 0:01:01"
        );
        assert_eq!(
            r("{{ vars.n + 2 }} {{ vars.n - 1 }} {{ 'a' ~ 'b' }} {{ [1] + [2] }}"),
            "5 2 ab [1, 2]"
        );
        assert_eq!(r("{{ vars.cmd.upper() }}"), "DATE");
        assert_eq!(r("{{ nosuchvar }}|{{ vars.nosuch }}"), "|");
        assert_eq!(r("{{ utils.uuid() | length }}"), "36");
        let ts = r("{{ start.timestamp() }}");
        assert_eq!(ts, "1795388400.0");
        assert_eq!(
            r("{{ (start.fromtimestamp(start.timestamp()-86400)).date() }}").len(),
            10
        );
        assert_eq!(r("{{ start.strftime('%d/%m/%y %f') }}"), "23/11/26 000000");
    }

    #[test]
    fn errors_name_the_field() {
        let e = renderer()
            .render("job.parameters.args[2]", "{{ unclosed")
            .unwrap_err();
        assert_eq!(e.field, "job.parameters.args[2]");
        let e = renderer()
            .render("env.X", "{{ start.strftime('%Q') }}")
            .unwrap_err();
        assert!(e.message.contains("%Q"), "{}", e.message);
    }

    #[test]
    fn rewrite_keeps_text_and_nesting() {
        assert_eq!(rewrite_arithmetic("plain - text").unwrap(), "plain - text");
        let out = rewrite_arithmetic("x{{ a + (b - c) }}y").unwrap();
        assert_eq!(
            out,
            "x{{ __lava_binop(\"+\", a, (__lava_binop(\"-\", b, c))) }}y"
        );
        let out = rewrite_arithmetic("{{ (a) + f(b).c - 1 }}").unwrap();
        assert_eq!(
            out,
            "{{ __lava_binop(\"-\", __lava_binop(\"+\", (a), f(b).c), 1) }}"
        );
    }
}
