"""Go's text formatting of JSON values, for messages and table cells that must read like kube-apiserver's.

Covers `%v`, `%q` and `%#v` of the values unstructured JSON decodes to in Go (string, int64, float64, bool,
nil, map[string]interface{}, []interface{}) and `encoding/json` output.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and the point position: |f| = 0.d1d2... * 10**dp."""
    _, digits, exp = Decimal(repr(abs(f))).as_tuple()
    ds = "".join(map(str, digits))
    return ds.rstrip("0"), len(ds) + int(exp)


def _fmt_e(neg: bool, ds: str, dp: int, exp_min_digits: int = 2) -> str:
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    exp = dp - 1
    sign = "-" if exp < 0 else "+"
    return f"{'-' if neg else ''}{mant}e{sign}{abs(exp):0{exp_min_digits}d}"


def _fmt_f(neg: bool, ds: str, dp: int) -> str:
    if dp <= 0:
        body = "0." + "0" * (-dp) + ds
    elif dp >= len(ds):
        body = ds + "0" * (dp - len(ds))
    else:
        body = ds[:dp] + "." + ds[dp:]
    return ("-" if neg else "") + body


def go_float(f: float) -> str:
    """`fmt.Sprint(float64)`: strconv 'g' with shortest digits, exponent form when exp < -4 or exp >= 6."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    ds, dp = _digits(f)
    if dp - 1 < -4 or dp - 1 >= 6:
        return _fmt_e(f < 0, ds, dp)
    return _fmt_f(f < 0, ds, dp)


def go_json_float(f: float) -> str:
    """`encoding/json` form of a float64."""
    if f == 0:
        return "0"
    ds, dp = _digits(f)
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        return _fmt_e(f < 0, ds, dp, exp_min_digits=1)
    return _fmt_f(f < 0, ds, dp)


def go_quote(s: str) -> str:
    """`strconv.Quote` / `%q`."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                        "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable() and o >= 0x80:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_value(v: Any) -> str:
    """`fmt.Sprint(v)` (`%v`)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_value(x) for x in v) + "]"
    return str(v)


def go_sharp_v(v: Any) -> str:
    """`%#v` of an unstructured JSON value."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, dict):
        inner = ", ".join(f"{go_quote(k)}:{go_sharp_v(v[k])}" for k in sorted(v))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(x) for x in v) + "}"
    return repr(v)


def go_json(v: Any) -> str:
    """`json.Marshal` of an unstructured value: sorted keys, no spaces, HTML-safe escapes."""
    if isinstance(v, bool) or v is None or isinstance(v, int):
        return json.dumps(v)
    if isinstance(v, float):
        return go_json_float(v)
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(v, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    return json.dumps(v)
