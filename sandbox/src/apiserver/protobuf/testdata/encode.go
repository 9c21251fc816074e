// Encodes objects the way kubectl's typed clients send them (application/vnd.kubernetes.protobuf):
// the k8s\0 envelope around runtime.Unknown, written by k8s.io/apimachinery's protobuf
// serializer with k8s.io/api's generated marshalers, the code kubectl runs.
//
// kubectl-bodies.hex is its output (one "name hex" line per object), read by ../tests.rs:
//
//	go mod init pbgen && go get k8s.io/api@v0.37.2 k8s.io/apimachinery@v0.37.2
//	go run . > kubectl-bodies.hex
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func main() {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = appsv1.AddToScheme(scheme)
	_ = autoscalingv2.AddToScheme(scheme)
	minReplicas := int32(1)
	cpu := int32(50)
	s := protobuf.NewSerializer(scheme, scheme)
	created := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	replicas := int32(2)
	objs := map[string]runtime.Object{
		"namespace": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"team": "a"}}},
		"configmap": &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "demo"},
			Data: map[string]string{"mode": "fast"}, BinaryData: map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G', 0, 0xff}}},
		"secret": &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
			Data: map[string][]byte{"password": []byte("s3cret")}, Type: corev1.SecretTypeOpaque},
		"service": &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{
					{Name: "80-8080", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
					{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromString("metrics")}}}},
		"hpa": &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MinReplicas:    &minReplicas, MaxReplicas: 3,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &cpu}}}}}},
		"deployment": &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: created, Labels: map[string]string{"app": "web"}},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "nginx", Image: "nginx:1",
						Ports: []corev1.ContainerPort{{ContainerPort: 80}},
						Resources: corev1.ResourceRequirements{
							Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
					}}}}}},
	}
	gvks := map[string]schema.GroupVersionKind{
		"namespace":  corev1.SchemeGroupVersion.WithKind("Namespace"),
		"configmap":  corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		"secret":     corev1.SchemeGroupVersion.WithKind("Secret"),
		"service":    corev1.SchemeGroupVersion.WithKind("Service"),
		"deployment": appsv1.SchemeGroupVersion.WithKind("Deployment"),
		"hpa":        autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
	}
	for _, name := range []string{"namespace", "configmap", "secret", "service", "deployment", "hpa"} {
		obj := objs[name]
		obj.GetObjectKind().SetGroupVersionKind(gvks[name])
		var buf []byte
		w := &writer{&buf}
		if err := s.Encode(obj, w); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s %s\n", name, hex.EncodeToString(buf))
	}
}

type writer struct{ b *[]byte }

func (w *writer) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
