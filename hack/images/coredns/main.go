// CoreDNS for the local dev cluster, built from its Go module (the pin in go.mod)
// with every plugin of the upstream build: the same main as github.com/coredns/coredns.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // Plug in CoreDNS.
	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
