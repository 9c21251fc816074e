// Command etcd is upstream's etcd server, built from go.etcd.io/etcd/server/v3 at the version
// pinned in ../../go.mod (the one Kubernetes itself requires); the body mirrors that
// module's main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
