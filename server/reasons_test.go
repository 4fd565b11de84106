package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestEveryAppErrorNamesAReason: each AppError the server builds carries a
// reason code for the log (badRequest takes one by its signature), so no
// refusal is ever logged as unclassified.
func TestEveryAppErrorNamesAReason(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "AppError" {
				return true
			}
			seen++
			for _, el := range cl.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Reason" {
						return true
					}
				}
			}
			t.Errorf("%s: AppError without a Reason", fset.Position(cl.Pos()))
			return true
		})
	}
	if seen < 10 {
		t.Errorf("found only %d AppError literals; is the test reading the right package?", seen)
	}
}
