// Command gobatch renders a batch of Go templates over JSON data with Go's text/template
// (plus the Yeastar CRM functions of shared/anchors/yeastar-ref) and prints one result per case:
//
//	gobatch CASES.json > RESULTS.json
//
// CASES.json is a list of {"template": "...", "data": ..., "option": "missingkey=..."}.
// Build: GO111MODULE=off go build -o gobatch .
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

type Case struct {
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
	Option   string          `json:"option"`
}
type Result struct {
	Ok        bool   `json:"ok"`
	Out       string `json:"out"`
	Err       string `json:"err"`
	ParseErr  bool   `json:"parse_err"`
}

func run(c Case) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			res = Result{Ok: false, Err: fmt.Sprintf("PANIC: %v", r)}
		}
	}()
	var data interface{}
	if len(c.Data) > 0 {
		if err := json.Unmarshal(c.Data, &data); err != nil {
			return Result{Err: "bad data: " + err.Error()}
		}
	}
	t := template.New("t").Funcs(funcs)
	if c.Option != "" {
		t = t.Option(c.Option)
	}
	t, err := t.Parse(c.Template)
	if err != nil {
		return Result{Err: err.Error(), ParseErr: true}
	}
	var out bytes.Buffer
	err = t.Execute(&out, data)
	if err != nil {
		return Result{Out: out.String(), Err: err.Error()}
	}
	return Result{Ok: true, Out: out.String()}
}

func main() {
	var cases []Case
	b, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(b, &cases); err != nil {
		panic(err)
	}
	res := make([]Result, len(cases))
	for i, c := range cases {
		res[i] = run(c)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.Encode(res)
}
var funcs = template.FuncMap{
	"Capitalize": func(s string) string {
		r, n := utf8.DecodeRuneInString(s)
		if n == 0 {
			return s
		}
		return string(unicode.ToUpper(r)) + s[n:]
	},
	"UrlEncode": func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	},
	"ToMillis": func(v interface{}) (string, error) {
		secs, err := toInt(v)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(secs*1000, 10), nil
	},
	"TimeFormat": func(v interface{}, layout string, utc string) (string, error) {
		secs, err := toInt(v)
		if err != nil {
			return "", err
		}
		t := time.Unix(secs, 0)
		if utc == "1" {
			t = t.UTC()
		}
		r := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05")
		return t.Format(r.Replace(layout)), nil
	},
}

func toInt(v interface{}) (int64, error) {
	switch x := v.(type) {
	case float64:
		return int64(x), nil
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	case json.Number:
		return x.Int64()
	}
	return 0, fmt.Errorf("not a timestamp: %v", v)
}

