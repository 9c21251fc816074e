// Applies a strategic merge patch with k8s.io/apimachinery v0.37.2, the code the API server
// runs; the expected results of the real-object cases in ../tests.rs were checked with it:
//
//	go mod init smp && go get k8s.io/api@v0.37.2 k8s.io/apimachinery@v0.37.2
//	go run . pod|svc|deploy '<live JSON>' '<patch JSON>'
package main

import (
	"fmt"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

func main() {
	var schema interface{} = &corev1.Pod{}
	switch os.Args[1] {
	case "svc":
		schema = &corev1.Service{}
	case "deploy":
		schema = &appsv1.Deployment{}
	}
	out, err := strategicpatch.StrategicMergePatch([]byte(os.Args[2]), []byte(os.Args[3]), schema)
	fmt.Println(string(out), err)
}
