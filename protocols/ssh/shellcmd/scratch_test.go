package shellcmd

import (
	"os"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"
)

func TestScratch(t *testing.T) {
	for _, s := range []string{"rm \\", "r\\\nm x", "time -p rm x", "declare -x A=$(rm) b", "[ -f x ]", "$'\\x72m' x", "@(rm) x", "sh <<EOF\nrm $x \\$y\nEOF\n", "sh <<'EOF'\nrm\nEOF", "echo 'abc", "if true; then", "a |", "sh <<EOF\nrm", "let a=1+2", "rm\\ x", "coproc rm", "\"rm\" x", "[[ -f $(rm) ]]", "a=(1 $(rm))", "rm>x", "&", "function f { rm; }", "cmd 2<<<x"} {
		f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(s), "")
		t.Logf("%q: err=%v incomplete=%v", s, err, syntax.IsIncomplete(err))
		if err == nil {
			syntax.DebugPrint(os.Stdout, f)
			os.Stdout.WriteString("\n")
		}
	}
}
