#!/usr/bin/env python3
"""Differential testing of callbox-gotmpl against Go's text/template.

Generates templates, renders them with Go (tools/difftest/gobatch) and with this crate
(examples/batch_render), and reports the cases whose answers differ (same output, or both
failing at the same stage, counts as agreeing; deliberate differences are skipped).

    cd tools/difftest/gobatch && GO111MODULE=off go build -o gobatch . && cd -
    cargo build --release -p callbox-gotmpl --example batch_render
    python3 tools/difftest/difftest.py fuzz printf 1 3000     # printf|float|struct|soup|esc
    python3 tools/difftest/difftest.py file CASES.json        # a JSON list of templates
    python3 tools/difftest/difftest.py golden                 # rewrite tests/golden/go_reference_cases.json

Environment: GOBATCH (Go runner), RUSTBATCH (this crate's runner).
"""
import json, os, random, re, struct, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(os.path.dirname(HERE))
GOBATCH = os.environ.get("GOBATCH", os.path.join(HERE, "gobatch", "gobatch"))
RUSTBATCH = os.environ.get("RUSTBATCH", os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(CRATE, "..", "..", "target")), "release", "examples", "batch_render"))

D1 = {"SI": [3, 4, 5], "SIEmpty": [], "MSI": {"one": 1, "two": 2, "three": 3}, "Empty0": None, "A": [None, 1, "x", [1, 2], {"k": "v"}], "X": "x", "I": 17, "F": 1234567, "S": "h\u00e9llo", "B": True, "Z": 0, "N": -3.5, "E": "", "U": {"V": "v"}}


def batch(binary, cases):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "difftest_cases.json")
    with open(path, "w") as f:
        json.dump(cases, f)
    return json.loads(subprocess.check_output([binary, path]))


def deliberate(case, go):
    """Differences documented in the crate docs."""
    err = go["err"]
    if not go["ok"] and "unexpected <with> in else" in err:
        return True  # Go 1.23 `else with` is supported
    if not go["ok"] and re.search(r"range can't iterate over -?[0-9]+$", err):
        return True  # Go 1.22 range over integers is supported
    if go["ok"] and re.search(r"[0-9]i\b", case["template"]):
        return True  # no complex numbers
    if case["template"] == "{{slice .SI 1 2 4}}":
        return True  # Go slices up to the capacity encoding/json happened to allocate
    return False


def run(cases, show=40):
    gos, ours = batch(GOBATCH, cases), batch(RUSTBATCH, cases)
    bad = []
    for c, a, b in zip(cases, gos, ours):
        same = a["ok"] == b["ok"] and (a["out"] == b["out"] if a["ok"] else a["parse_err"] == b["parse_err"])
        if not same and not deliberate(c, a):
            bad.append((c, a, b))
    for c, a, b in bad[:show]:
        print("T:", repr(c["template"])[:300])
        for who, r in (("go", a), ("us", b)):
            print("  ", who, ":", ("OK " + repr(r["out"])[:300]) if r["ok"] else ("ERR " + ("(parse) " if r["parse_err"] else "") + r["err"][:300]))
    print(len(bad), "disagreements of", len(cases))
    return bad

def gen_printf(R, n):
    def rfloat():
        c=R.random()
        if c<0.2: return R.choice([0.0,-0.0,1.0,0.5,1.5,2.5,0.125,1e21,1e20,1e-5,1e-4,123456.0,1234567.0,1e6,999999.0,0.1,0.3,2.675,1e100,5e-324,1.7976931348623157e308])
        if c<0.5: return round(R.uniform(-1000,1000), R.randint(0,6))
        if c<0.7: return float(R.randint(-10**9,10**9))
        e=R.randint(-30,30); return R.uniform(-10,10)*10**e
    def lit():
        c=R.random()
        if c<0.2: return str(R.randint(-1000,100000))
        if c<0.4:
            f=rfloat(); s=repr(f)
            if s in ('inf','-inf','nan'): s='1.5'
            if 'e' not in s and '.' not in s: s+='.0'
            if s.startswith('-0.0') and f==0: s='0.0'
            return s
        if c<0.55: return json.dumps(R.choice(["","a","abc","héllo","x y","a\"b","\t","日本語","`q`","\u2028"]))
        if c<0.6: return R.choice(["true","false"])
        if c<0.65: return "nil"
        if c<0.7: return R.choice(["'a'","'é'","'\\n'"])
        return R.choice([".I",".F",".S",".X",".SI",".MSI",".A",".Empty0",".Missing",".N",".Z",".E",".B",".Big",".Small",".Neg"])
    def fmtspec():
        s='%'
        for _ in range(R.choice([0,0,1,1,2,3])): s+=R.choice('#0+- ')
        if R.random()<0.1: s+='[%d]'%R.randint(0,4)
        if R.random()<0.4: s+=R.choice([str(R.randint(0,12)),'*'])
        if R.random()<0.4:
            s+='.'+R.choice([str(R.randint(0,12)),'*',''])
        s+=R.choice('vvvdsqxXobeEfFgGtcUT%zO')
        return s
    def tmpl():
        f=''.join(R.choice([fmtspec(),fmtspec(),'|',' ','x']) for _ in range(R.randint(1,4)))
        args=' '.join(lit() for _ in range(R.randint(0,4)))
        return '{{printf %s %s}}'%(json.dumps(f),args)
    D={"I":17,"F":1234567.0,"S":"héllo","X":"x","SI":[3,4.5,"a",None,True],"MSI":{"one":1,"two":"b","n":None},"A":[[1,2],{"k":[1]}],"Empty0":None,"N":-3.25,"Z":0,"E":"","B":False,"Big":1e300,"Small":1e-300,"Neg":-0.0}
    cases=[{"template":tmpl(),"data":D} for _ in range(n)]
    return cases

def gen_float(R, n):
    def rf():
        c=R.random()
        if c<0.5:
            while True:
                b=R.getrandbits(64); f=struct.unpack('<d',struct.pack('<Q',b))[0]
                if f==f and abs(f)!=float('inf'): return f
        if c<0.8: return R.randint(-10**7,10**7)/R.choice([1,2,4,8,16,10,100,1000,3])
        return float(R.randint(-2**60,2**60))*R.choice([1,0.5,0.25,2**-10])
    def lit(f):
        s=repr(f)
        if 'e' not in s and '.' not in s and 'inf' not in s: s+='.0'
        return s
    cases=[]
    for _ in range(n):
        f=rf()
        verbs=['%v','%e','%E','%g','%G','%f','%x','%X','%b','%.0f','%.1f','%.3e','%.5g','%.17g','%.20f','%.0e','%.1g','%#g','%#.3g','%+.2e','%08.2f','% .4g','%.16g','%.15g','%#x','%.3x','%.0x','%.14x','%12.5G']
        fs=' '.join(R.sample(verbs,4))
        l=lit(f)
        cases.append({"template":'{{printf "%s" %s %s %s %s}}|{{%s}}'%(fs,l,l,l,l,l),"data":None})
    return cases

def gen_struct(R, n):
    FIELDS=['.X','.I','.SI','.MSI','.A','.Empty0','.Missing','.U','.U.V','.MSI.one','.A.k','.B','.Z','.E','.N','.S','.F','$','$.X','$.SI','.']
    FUNCS=['and','or','not','len','index','slice','print','printf','println','html','js','urlquery','eq','ne','lt','le','gt','ge','Capitalize','UrlEncode']
    LITS=['1','0','2','-1','1.5','0.0','"a"','"x"','""','`raw`','true','false','nil',"'c'",'3','17.0','"%d"','"%v-%s"','4']
    def var(vs):
        return R.choice(vs) if vs and R.random()<0.7 else '$'+R.choice('xyz')
    def arg(vs, d):
        c=R.random()
        if c<0.35: return R.choice(FIELDS)
        if c<0.65: return R.choice(LITS)
        if c<0.75 and vs: return R.choice(vs)+R.choice(['','','.X','.one'])
        if c<0.9 and d<3: return '('+pipe(vs,d+1)+')'
        return R.choice(FUNCS) if R.random()<0.2 else R.choice(FIELDS)
    def cmd(vs,d):
        c=R.random()
        if c<0.6:
            f=R.choice(FUNCS); return f+''.join(' '+arg(vs,d) for _ in range(R.choice([0,1,1,2,2,2,3])))
        return arg(vs,d)
    def pipe(vs,d=0):
        p=cmd(vs,d)
        for _ in range(R.choice([0,0,0,1,2])): p+=' | '+cmd(vs,d)
        return p
    def body(vs, depth, inrange):
        out=[]
        for _ in range(R.randint(1,4)):
            c=R.random()
            if c<0.25: out.append(R.choice(['a','-',' ','\n','x y',' \t ']))
            elif c<0.5: out.append('{{'+R.choice(['','- '])+pipe(vs)+R.choice(['',' -'])+'}}')
            elif c<0.58:
                v='$'+R.choice('xyz'); out.append('{{'+v+' := '+pipe(vs)+'}}'); vs=vs+[v]
            elif c<0.62 and vs: out.append('{{'+R.choice(vs)+' = '+pipe(vs)+'}}')
            elif c<0.7 and depth<3:
                k=R.choice(['if','with']); s='{{'+k+' '+pipe(vs)+'}}'+body(vs,depth+1,inrange)
                if R.random()<0.3: s+='{{else '+k+' '+pipe(vs)+'}}'+body(vs,depth+1,inrange)
                if R.random()<0.5: s+='{{else}}'+body(vs,depth+1,inrange)
                out.append(s+'{{end}}')
            elif c<0.8 and depth<3:
                decl=R.choice(['','$i := ','$i, $e := ','$e := '])
                nv=vs+[x for x in ['$i','$e'] if x in decl]
                s='{{range '+decl+R.choice(['.SI','.MSI','.A','.Missing','.X','.SIEmpty','2','.I','.U'])+'}}'+body(nv,depth+1,True)
                if R.random()<0.3: s+='{{else}}'+body(vs,depth+1,inrange)
                out.append(s+'{{end}}')
            elif c<0.85 and inrange: out.append(R.choice(['{{break}}','{{continue}}','{{if .}}{{break}}{{end}}']))
            elif c<0.9: out.append('{{template "d" '+arg(vs,0)+'}}')
            elif c<0.93: out.append('{{/* c */}}')
            else: out.append('{{'+pipe(vs)+'}}')
        return ''.join(out)
    def tmpl():
        t=body([],0,False)
        if R.random()<0.5: t='{{define "d"}}['+body([],1,False)+']{{end}}'+t
        else: t+='{{define "d"}}<{{.}}>{{end}}'
        if R.random()<0.15:
            i=R.randint(0,len(t)); t=t[:i]+R.choice(['{{','}}','(',')','"','-',' ','|','$','.','end','{{end}}','{{else}}'])+t[i:]
        return t
    D={"SI":[3,4,5],"SIEmpty":[],"MSI":{"one":1,"two":2,"three":3},"Empty0":None,"A":[None,1,"x",[1,2],{"k":"v"}],"X":"x","I":17,"F":1234567,"S":"héllo","B":True,"Z":0,"N":-3.5,"E":"","U":{"V":"v"}}
    cases=[{"template":tmpl(),"data":D} for _ in range(n)]
    return cases

def gen_soup(R, n):
    FR=['"\\é"','"\\x80"','"\\xc3\\xa9"',"'\\x80'","'\\u00e9'",'"\\U0001F600"','"\\400"','"\\ud800"','{{','}}','{{- ',' -}}','{{-','-}}',' ','(',')','|','$x',':=','=','$','.','.X','.SI','"s"','`r`',"'c'",'1','-1','0x1F','1.5e3','if','else','end','range','with','define','template','block','break','continue','nil','true','print','printf','len','index','and','/*','*/','"%d"',',','$y','\n','é','"\\n"','1_0','0b1','.MSI.one','else if','{{end}}','{{else}}','{{if .X}}','{{range .SI}}','{{with .U}}','{{define "a"}}','{{template "a"}}','"a"','x','\t','..','#','@','}','{','.5','09','1e','0x','\'\'','"unterminated','`','"\\q"']
    cases=[]
    for _ in range(n):
        t=''.join(R.choice(FR) for _ in range(R.randint(1,14)))
        cases.append({"template":t,"data":{"X":"x","SI":[1,2],"MSI":{"one":1},"U":{"V":1}}})
    return cases

def gen_esc(R, n):
    CH=list("ab <>&'\"=\\/?#%+~_.-\t\n\x01\x7f")+['é','日','\u2028','\u00a0','\u200b','😀','\ufeff','\u0085','\u0300','\U000e0001','\ue000']
    cases=[]
    for _ in range(n):
        s=''.join(R.choice(CH) for _ in range(R.randint(0,12)))
        f=R.choice(['html','js','urlquery','printf "%q"','printf "%+q"','printf "%#q"','printf "%x"','printf "% X"','printf "%.3s|%5.2q"','print','len','printf "%U %#U %c %q"'])
        if 'U' in f: cases.append({"template":'{{%s %s %s %s %s}}'%(f,ord(R.choice(CH)),ord(R.choice(CH)),ord(R.choice(CH)),ord(R.choice(CH))),"data":None}); continue
        if '|' in f: cases.append({"template":'{{%s .S .S}}'%f,"data":{"S":s}}); continue
        cases.append({"template":'{{%s .S}}'%f,"data":{"S":s}})
    return cases


GENERATORS = {"printf": gen_printf, "float": gen_float, "struct": gen_struct, "soup": gen_soup, "esc": gen_esc}


def golden():
    """Rewrites tests/golden/go_reference_cases.json with Go's answers."""
    datas, cases = {"D1": D1, "NULL": None}, []
    with open(os.path.join(HERE, "hand_cases.json"), encoding="utf-8") as f:
        for t in json.load(f):
            cases.append({"template": t, "d": "D1"})
    for key, seed, n in (("printf", 101, 400), ("float", 102, 300), ("struct", 103, 250), ("soup", 104, 300), ("esc", 105, 250)):
        for c in GENERATORS[key](random.Random(seed), n):
            d = c.get("data")
            name = next((k for k, v in datas.items() if v == d), None)
            if name is None:
                name = "G%d" % len(datas)
                datas[name] = d
            cases.append({"template": c["template"], "d": name})
    gos = batch(GOBATCH, [{"template": c["template"], "data": datas[c["d"]]} for c in cases])
    out = []
    for c, r in zip(cases, gos):
        if deliberate(c, r) or r["err"].startswith("PANIC") or len(r["out"]) > 1500 or len(c["template"]) > 1500:
            continue
        e = {"template": c["template"], "data": c["d"]}
        if r["ok"]:
            e["output"] = r["out"]
        else:
            e["error"] = r["err"][:160] + ("\u2026" if len(r["err"]) > 160 else "")
            e["parse_error"] = r["parse_err"]
        out.append(e)
    used = {c["data"] for c in out}
    doc = {"source": "answers of Go's text/template (encoding/json data) for hand-written and generated templates; see tools/difftest",
           "data": {k: v for k, v in datas.items() if k in used}, "cases": out}
    path = os.path.join(CRATE, "tests", "golden", "go_reference_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, indent=0))
    print(len(out), "cases written to", path)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "fuzz":
        key, seed, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        bad = run(GENERATORS[key](random.Random(seed), n))
    elif len(sys.argv) >= 2 and sys.argv[1] == "file":
        with open(sys.argv[2], encoding="utf-8") as f:
            templates = json.load(f)
        bad = run([{"template": t, "data": D1} for t in templates])
    elif len(sys.argv) >= 2 and sys.argv[1] == "golden":
        golden()
        return
    else:
        print(__doc__)
        sys.exit(2)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
