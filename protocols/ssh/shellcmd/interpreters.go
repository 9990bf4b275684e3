package shellcmd

import "strings"

// interpreter describes a program that runs code in its own language: given
// inline (an option's value, or with it the first operand), from a script
// file (opaque, like a shell script), or read from its input.
type interpreter struct {
	spec   optSpec
	inline []string // options that give code inline (python3 -c, perl -e)
	// shellOut reports whether inline code can be seen to stay in the
	// language (awk without system() or pipes, psql without \!); nil
	// means any inline code is unknown.
	shellOut func(code string) bool
	// fileOpt are options that name the program's file (awk -f): it then
	// runs no inline code.
	fileOpt []string
	// operands says what its operands are: a script file (the default),
	// awk's program, SQL clients' databases (code comes from the input or
	// sqlite3's second operand), an editor's files.
	operands operandKind
}

type operandKind int

const (
	scriptFile   operandKind = iota // python3 FILE: opaque, like a shell script
	programFirst                    // awk PROGRAM FILE…
	database                        // psql DB, mysql DB, sqlite3 DB [SQL]
	editorFiles                     // vim FILE…, +CMD runs an editor command
)

// interpreters is the table of interpreters: inline code in them is
// unknown (Dynamic), so it is refused wherever command rules apply; without
// a script they read code from their input.
var interpreters = map[string]interpreter{
	"python":  {spec: optSpec{anyShort: true, valued: "WXQ", long: withHelp(map[string]longKind{"check-hash-based-pycs": longValue})}, inline: []string{"c"}},
	"pypy":    {spec: optSpec{anyShort: true, valued: "WXQ", anyLongValue: true}, inline: []string{"c"}},
	"perl":    {spec: optSpec{anyShort: true, valued: "IMm", optional: "0ilxCdD"}, inline: []string{"e", "E"}},
	"ruby":    {spec: optSpec{anyShort: true, valued: "rICEF", optional: "0ixTWK", anyLongValue: true}, inline: []string{"e"}},
	"irb":     {spec: optSpec{anyShort: true, valued: "rI", anyLongValue: true}},
	"node":    {spec: optSpec{anyShort: true, valued: "r", long: withHelp(map[string]longKind{"eval": longValue, "print": longValue, "require": longValue, "input-type": longValue, "import": longValue, "loader": longValue})}, inline: []string{"e", "p", "eval", "print"}},
	"nodejs":  {spec: optSpec{anyShort: true, valued: "r", long: withHelp(map[string]longKind{"eval": longValue, "print": longValue, "require": longValue})}, inline: []string{"e", "p", "eval", "print"}},
	"php":     {spec: optSpec{anyShort: true, valued: "cdzBRFE", anyLongValue: true}, inline: []string{"r", "B", "R", "E"}},
	"lua":     {spec: optSpec{anyShort: true, valued: "l"}, inline: []string{"e"}},
	"luajit":  {spec: optSpec{anyShort: true, valued: "lbjO"}, inline: []string{"e"}},
	"tclsh":   {spec: optSpec{anyShort: true}},
	"expect":  {spec: optSpec{anyShort: true, valued: "f"}, inline: []string{"c"}},
	"Rscript": {spec: optSpec{anyShort: true, anyLongValue: true}, inline: []string{"e"}},
	"R":       {spec: optSpec{anyShort: true, anyLongValue: true}, inline: []string{"e"}},
	"julia":   {spec: optSpec{anyShort: true, valued: "LJ", anyLongValue: true}, inline: []string{"e", "E"}},
	"gdb":     {spec: optSpec{anyShort: true, valued: "xp", anyLongValue: true}, inline: []string{"ex", "eval-command", "x", "batch"}},
	"vim":     {spec: optSpec{anyShort: true, valued: "cSTuiwW", anyLongValue: true}, inline: []string{"c", "S", "cmd"}, operands: editorFiles},
	"awk":     {spec: optSpec{valued: "vF", anyLongValue: true}, fileOpt: []string{"f", "file"}, shellOut: noAwkShell, operands: programFirst},
	"psql":    {spec: optSpec{anyShort: true, valued: "dhpUvPTLoFRzCX", anyLongValue: true}, inline: []string{"c", "command"}, fileOpt: []string{"f", "file"}, shellOut: noSQLShell, operands: database},
	"mysql":   {spec: optSpec{anyShort: true, valued: "uhPDS", anyLongValue: true}, inline: []string{"e", "execute"}, shellOut: noSQLShell, operands: database},
	"sqlite3": {spec: optSpec{anyShort: true, valued: "", anyLongValue: true}, inline: []string{"cmd"}, shellOut: noSQLShell, operands: database},
}

func init() {
	for alias, name := range map[string]string{
		"python2": "python", "python3": "python", "pypy3": "pypy", "nvim": "vim", "vi": "vim", "ex": "vim", "view": "vim",
		"gawk": "awk", "mawk": "awk", "nawk": "awk", "busybox-awk": "awk", "mariadb": "mysql", "wish": "tclsh",
	} {
		interpreters[alias] = interpreters[name]
	}
}

func (in interpreter) unwrap(args []field, j job) unwrapped {
	spec := in.spec
	for _, name := range in.inline {
		if len(name) == 1 {
			spec.valued += name
		}
	}
	for _, name := range in.fileOpt {
		if len(name) == 1 {
			spec.valued += name
		}
	}
	opts, ops, ok := scan(args, spec)
	if !ok {
		return unknown
	}
	if has(opts, "help", "version") || (len(args) == 1 && (args[0].text == "-h" || args[0].text == "-V")) {
		return unwrapped{} // prints its usage or version
	}
	if code, ok := value(opts, in.inline...); ok || has(opts, in.inline...) {
		if in.shellOut != nil && ok && !code.dynamic && in.shellOut(code.text) {
			return unwrapped{}
		}
		return unknown
	}
	if len(in.fileOpt) > 0 && has(opts, in.fileOpt...) {
		return unwrapped{} // a program file: as opaque as a script file
	}
	switch in.operands {
	case programFirst:
		if len(ops) == 0 {
			return unwrapped{} // a usage message
		}
		if ops[0].dynamic || !in.shellOut(ops[0].text) {
			return unknown
		}
		return unwrapped{}
	case database:
		if len(ops) > 1 { // sqlite3 DB SQL…
			if code := join(ops[1:]); code.dynamic || !in.shellOut(code.text) {
				return unknown
			}
			return unwrapped{}
		}
		return unwrapped{stdinCode: true}
	case editorFiles:
		for _, o := range ops {
			if o.dynamic || (strings.HasPrefix(o.text, "+") && strings.Trim(o.text, "+0123456789") != "") {
				return unknown // +CMD: an editor command (:!rm …)
			}
		}
		return unwrapped{} // what is typed into an editor is out of reach
	}
	if len(ops) == 0 || ops[0].text == "-" {
		return unwrapped{stdinCode: true}
	}
	if u := scriptFileOf(ops[0]); u.stdinScript {
		return unwrapped{stdinCode: true}
	} else {
		return u
	}
}

// noAwkShell reports whether an awk program runs no other program: no
// system(), no pipes to or from commands.
func noAwkShell(code string) bool {
	return !strings.Contains(code, "system") && !strings.Contains(code, "|")
}

// noSQLShell reports whether SQL client input has no shell escape (\! in
// psql and mysql, .shell and .system in sqlite3, COPY … PROGRAM).
func noSQLShell(code string) bool {
	l := strings.ToLower(code)
	return !strings.Contains(l, `\!`) && !strings.Contains(l, "system") && !strings.Contains(l, ".shell") &&
		!strings.Contains(l, "program")
}
