//! Python's `datetime`, `date` and `timedelta` as template values, so the Python-isms lava users
//! write (`start.strftime(...)`, `ustart.year`, `ustart + utils.timedelta(days=1)`) render as
//! Python Jinja renders them.

use std::fmt;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike,
};
use minijinja::value::{from_args, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The error for a method a Python time type does not have.
pub fn no_method(kind: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{kind} has no method {method}"),
    )
}

/// Python's strftime over chrono's: `%f` is microseconds; an unknown directive is an error,
/// never a panic.
fn strftime(
    fmt_str: &str,
    naive: &NaiveDateTime,
    offset: Option<&FixedOffset>,
) -> Result<String, Error> {
    let mut f = fmt_str.replace("%f", "%6f");
    if offset.is_none() {
        // Python prints nothing for %z / %Z of a naive datetime.
        f = f.replace("%z", "").replace("%Z", "");
    }
    let items: Vec<Item> = StrftimeItems::new(&f).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(err(format!("invalid strftime format {fmt_str:?}")));
    }
    use std::fmt::Write;
    let mut out = String::new();
    let res = match offset {
        Some(o) => {
            let dt = o
                .from_local_datetime(naive)
                .single()
                .ok_or_else(|| err("bad time"))?;
            write!(out, "{}", dt.format_with_items(items.into_iter()))
        }
        None => write!(out, "{}", naive.format_with_items(items.into_iter())),
    };
    res.map_err(|_| err(format!("cannot format with {fmt_str:?}")))?;
    Ok(out)
}

/// A Python datetime: wall-clock time and, when aware, its UTC offset.
#[derive(Debug, Clone)]
pub struct PyDateTime {
    pub naive: NaiveDateTime,
    /// The UTC offset of the wall-clock time, when known.
    pub offset: Option<FixedOffset>,
    /// Whether the value is "aware" (shows its offset). lava's `start`/`ustart` are naive like
    /// Python's `datetime.now()`, but their instant is known, so `timestamp()` is exact.
    pub aware: bool,
}

impl PyDateTime {
    pub fn aware(dt: DateTime<FixedOffset>) -> Self {
        PyDateTime {
            naive: dt.naive_local(),
            offset: Some(*dt.offset()),
            aware: true,
        }
    }

    /// Naive wall-clock time of a known instant.
    pub fn naive_at(dt: DateTime<FixedOffset>) -> Self {
        PyDateTime {
            aware: false,
            ..Self::aware(dt)
        }
    }

    pub fn naive(naive: NaiveDateTime) -> Self {
        PyDateTime {
            naive,
            offset: None,
            aware: false,
        }
    }

    fn shown_offset(&self) -> Option<&FixedOffset> {
        self.offset.as_ref().filter(|_| self.aware)
    }

    pub fn value(self) -> Value {
        Value::from_object(self)
    }

    /// Seconds since the epoch; a naive value is taken as local time, as Python does.
    fn timestamp(&self) -> f64 {
        let secs = match self.offset {
            Some(o) => o
                .from_local_datetime(&self.naive)
                .single()
                .map(|d| d.timestamp()),
            None => Local
                .from_local_datetime(&self.naive)
                .earliest()
                .map(|d| d.timestamp()),
        }
        .unwrap_or_else(|| self.naive.and_utc().timestamp());
        secs as f64 + self.naive.nanosecond() as f64 / 1e9
    }

    fn isoformat(&self, sep: &str) -> String {
        let mut s = self.naive.format("%Y-%m-%d").to_string();
        s.push_str(sep);
        s.push_str(&self.naive.format("%H:%M:%S").to_string());
        let micros = self.naive.nanosecond() / 1000;
        if micros != 0 {
            s.push_str(&format!(".{micros:06}"));
        }
        if let Some(o) = self.shown_offset() {
            let secs = o.local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let a = secs.abs();
            s.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60));
        }
        s
    }

    pub fn add(&self, d: &PyTimeDelta, sign: i64) -> Result<PyDateTime, Error> {
        let delta = chrono::TimeDelta::microseconds(d.micros * sign);
        let naive = self
            .naive
            .checked_add_signed(delta)
            .ok_or_else(|| err("date value out of range"))?;
        Ok(PyDateTime {
            naive,
            ..self.clone()
        })
    }

    fn instant_micros(&self) -> i64 {
        let off = self.offset.map(|o| o.local_minus_utc() as i64).unwrap_or(0);
        self.naive.and_utc().timestamp_micros() - off * 1_000_000
    }
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let n = &self.naive;
        Some(Value::from(match key.as_str()? {
            "year" => n.year() as i64,
            "month" => n.month() as i64,
            "day" => n.day() as i64,
            "hour" => n.hour() as i64,
            "minute" => n.minute() as i64,
            "second" => n.second() as i64,
            "microsecond" => (n.nanosecond() / 1000) as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (f,): (&str,) = from_args(args)?;
                strftime(f, &self.naive, self.shown_offset()).map(Value::from)
            }
            "isoformat" => {
                let (sep,): (Option<&str>,) = from_args(args)?;
                Ok(Value::from(self.isoformat(sep.unwrap_or("T"))))
            }
            "timestamp" => {
                let () = from_args(args)?;
                Ok(Value::from(self.timestamp()))
            }
            "date" => {
                let () = from_args(args)?;
                Ok(PyDate(self.naive.date()).value())
            }
            "weekday" => Ok(Value::from(self.naive.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.naive.weekday().number_from_monday())),
            "fromtimestamp" | "utcfromtimestamp" => {
                let (ts,): (f64,) = from_args(args)?;
                from_timestamp(ts, method == "utcfromtimestamp").map(Value::from_object)
            }
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let n = &self.naive;
                let get = |k: &str, d: u32| -> Result<u32, Error> {
                    Ok(kwargs.get::<Option<u32>>(k)?.unwrap_or(d))
                };
                let year: i32 = kwargs.get::<Option<i32>>("year")?.unwrap_or(n.year());
                let date =
                    NaiveDate::from_ymd_opt(year, get("month", n.month())?, get("day", n.day())?)
                        .ok_or_else(|| err("day is out of range for month"))?;
                let time = chrono::NaiveTime::from_hms_micro_opt(
                    get("hour", n.hour())?,
                    get("minute", n.minute())?,
                    get("second", n.second())?,
                    get("microsecond", n.nanosecond() / 1000)?,
                )
                .ok_or_else(|| err("time value out of range"))?;
                kwargs.assert_all_used()?;
                Ok(PyDateTime {
                    naive: date.and_time(time),
                    ..(**self).clone()
                }
                .value())
            }
            _ => Err(no_method("datetime", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

fn from_timestamp(ts: f64, utc: bool) -> Result<PyDateTime, Error> {
    let secs = ts.floor() as i64;
    let nanos = ((ts - ts.floor()) * 1e9).round() as u32;
    let dt = DateTime::from_timestamp(secs, nanos.min(999_999_999))
        .ok_or_else(|| err("timestamp out of range"))?;
    Ok(if utc {
        PyDateTime::naive(dt.naive_utc())
    } else {
        PyDateTime::naive(dt.with_timezone(&Local).naive_local())
    })
}

/// A Python date.
#[derive(Debug, Clone)]
pub struct PyDate(pub NaiveDate);

impl PyDate {
    pub fn value(self) -> Value {
        Value::from_object(self)
    }
}

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "year" => self.0.year() as i64,
            "month" => self.0.month() as i64,
            "day" => self.0.day() as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _s: &State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (f,): (&str,) = from_args(args)?;
                strftime(f, &self.0.and_hms_opt(0, 0, 0).expect("midnight"), None).map(Value::from)
            }
            "isoformat" => Ok(Value::from(self.0.format("%Y-%m-%d").to_string())),
            "weekday" => Ok(Value::from(self.0.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.0.weekday().number_from_monday())),
            _ => Err(no_method("date", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// A Python timedelta, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct PyTimeDelta {
    pub micros: i64,
}

impl PyTimeDelta {
    pub fn value(self) -> Value {
        Value::from_object(self)
    }

    fn parts(&self) -> (i64, i64, i64) {
        let days = self.micros.div_euclid(86_400_000_000);
        let rest = self.micros.rem_euclid(86_400_000_000);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

impl Object for PyTimeDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (d, s, us) = self.parts();
        Some(Value::from(match key.as_str()? {
            "days" => d,
            "seconds" => s,
            "microseconds" => us,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _s: &State,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                let () = from_args(args)?;
                Ok(Value::from(self.micros as f64 / 1e6))
            }
            _ => Err(no_method("timedelta", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s, us) = self.parts();
        if d != 0 {
            write!(f, "{d} day{}, ", if d.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        Ok(())
    }
}

/// Python-style integer arguments, positional or by keyword, in `names` order.
fn int_args(func: &str, args: &[Value], names: &[&str]) -> Result<Vec<Option<i64>>, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    if pos.len() > names.len() {
        return Err(err(format!(
            "{func}() takes at most {} arguments",
            names.len()
        )));
    }
    let mut vals = vec![None; names.len()];
    for (i, v) in pos.iter().enumerate() {
        vals[i] = Some(
            i64::try_from(v.clone())
                .map_err(|_| err(format!("{} must be an integer", names[i])))?,
        );
    }
    for (i, n) in names.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<i64>>(n)? {
            vals[i] = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    Ok(vals)
}

fn ymd(func: &str, vals: &[Option<i64>]) -> Result<NaiveDate, Error> {
    let need = |i: usize, name: &str| {
        vals[i].ok_or_else(|| err(format!("{func}() missing required argument '{name}'")))
    };
    NaiveDate::from_ymd_opt(
        need(0, "year")? as i32,
        need(1, "month")? as u32,
        need(2, "day")? as u32,
    )
    .ok_or_else(|| err("day is out of range for month"))
}

/// `utils.datetime(year, month, day, hour=0, ...)`, positional or keyword.
pub fn make_datetime(args: &[Value]) -> Result<Value, Error> {
    let names = [
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "microsecond",
    ];
    let vals = int_args("datetime", args, &names)?;
    let date = ymd("datetime", &vals)?;
    let t = |i: usize| vals[i].unwrap_or(0) as u32;
    let time = chrono::NaiveTime::from_hms_micro_opt(t(3), t(4), t(5), t(6))
        .ok_or_else(|| err("time out of range"))?;
    Ok(PyDateTime::naive(date.and_time(time)).value())
}

/// `utils.date(year, month, day)`.
pub fn make_date(args: &[Value]) -> Result<Value, Error> {
    let vals = int_args("date", args, &["year", "month", "day"])?;
    Ok(PyDate(ymd("date", &vals)?).value())
}

/// `utils.timedelta(days=0, seconds=0, microseconds=0, milliseconds=0, minutes=0, hours=0, weeks=0)`.
pub fn make_timedelta(args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    let units: [(&str, f64); 7] = [
        ("days", 86_400e6),
        ("seconds", 1e6),
        ("microseconds", 1.0),
        ("milliseconds", 1e3),
        ("minutes", 60e6),
        ("hours", 3600e6),
        ("weeks", 604_800e6),
    ];
    let mut total = 0f64;
    for (i, v) in pos.iter().enumerate() {
        let (_, m) = units
            .get(i)
            .ok_or_else(|| err("timedelta() takes at most 7 arguments"))?;
        total +=
            f64::try_from(v.clone()).map_err(|_| err("timedelta() arguments must be numbers"))? * m;
    }
    for (n, m) in units {
        if let Some(v) = kwargs.get::<Option<f64>>(n)? {
            total += v * m;
        }
    }
    kwargs.assert_all_used()?;
    Ok(PyTimeDelta {
        micros: total.round() as i64,
    }
    .value())
}

/// `a + b` / `a - b` for the Python time types; `None` when neither side is one (the caller
/// then applies the template engine's own arithmetic).
pub fn arith(op: &str, a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let dt = |v: &Value| v.downcast_object_ref::<PyDateTime>().cloned();
    let date = |v: &Value| v.downcast_object_ref::<PyDate>().cloned();
    let td = |v: &Value| v.downcast_object_ref::<PyTimeDelta>().copied();
    let sign = if op == "+" { 1 } else { -1 };
    Some(match (dt(a), date(a), td(a), dt(b), date(b), td(b)) {
        (Some(x), _, _, _, _, Some(d)) => x.add(&d, sign).map(PyDateTime::value),
        (_, _, Some(d), Some(x), _, _) if op == "+" => x.add(&d, 1).map(PyDateTime::value),
        (Some(x), _, _, Some(y), _, _) if op == "-" => Ok(PyTimeDelta {
            micros: x.instant_micros() - y.instant_micros(),
        }
        .value()),
        (_, Some(x), _, _, _, Some(d)) => {
            let days = d.micros.div_euclid(86_400_000_000) * sign;
            x.0.checked_add_signed(chrono::TimeDelta::days(days))
                .map(|n| PyDate(n).value())
                .ok_or_else(|| err("date value out of range"))
        }
        (_, Some(x), _, _, Some(y), _) if op == "-" => Ok(PyTimeDelta {
            micros: (x.0 - y.0).num_days() * 86_400_000_000,
        }
        .value()),
        (_, _, Some(x), _, _, Some(y)) => Ok(PyTimeDelta {
            micros: x.micros + sign * y.micros,
        }
        .value()),
        (None, None, None, None, None, None) => return None,
        _ => Err(err(format!("unsupported operand types for {op}"))),
    })
}
