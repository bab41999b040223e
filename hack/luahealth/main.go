// Command luahealth runs an Argo CD health script the way Argo CD does: gopher-lua
// (Lua 5.1), the resource in the global obj, the returned table read as a health status.
//
// Usage: luahealth SCRIPT < object.json; prints {"status": ..., "message": ...}.
//
// It follows argo-cd's util/lua (VM.runLua, ExecuteHealthLua, decodeValue): only the
// package, base and table libraries are opened (a health customization without
// useOpenLibs gets no string, math or io library; Argo CD's restricted os is left out,
// the scripts here do not use it), the object is converted field by field (numbers
// LNumber, JSON null absent, arrays as sequences), the script has one second, and the
// returned table is encoded with gopher-json and decoded as a HealthStatus, an unknown
// status turning into Unknown.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

const invalidHealthStatus = "Lua returned an invalid health status"

type healthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

// decodeValue is argo-cd's: a Kubernetes object (unstructured: int64 and float64
// numbers) as Lua values; nil, in a map or a list, leaves no entry.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// unstructured turns json.Number into int64 or float64, as Kubernetes' unstructured decoding does.
func unstructured(value any) (any, error) {
	switch converted := value.(type) {
	case json.Number:
		if i, err := converted.Int64(); err == nil {
			return i, nil
		}
		return converted.Float64()
	case []any:
		for i, item := range converted {
			v, err := unstructured(item)
			if err != nil {
				return nil, err
			}
			converted[i] = v
		}
	case map[string]any:
		for key, item := range converted {
			v, err := unstructured(item)
			if err != nil {
				return nil, err
			}
			converted[key] = v
		}
	}
	return value, nil
}

func run(script string, object map[string]any) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, object))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	returned := l.Get(-1)
	if returned.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return nil, err
	}
	health := &healthStatus{}
	if err := json.Unmarshal(encoded, health); err != nil {
		return nil, err
	}
	if !validStatuses[health.Status] {
		return &healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return health, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: luahealth SCRIPT < object.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	decoder := json.NewDecoder(bytes.NewReader(input))
	decoder.UseNumber()
	var raw map[string]any
	if err := decoder.Decode(&raw); err != nil {
		fmt.Fprintln(os.Stderr, "object:", err)
		os.Exit(1)
	}
	decoded, err := unstructured(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "object:", err)
		os.Exit(1)
	}
	health, err := run(string(script), decoded.(map[string]any))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(health); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
