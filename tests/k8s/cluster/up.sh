#!/usr/bin/env bash
# Kubernetes (v1.34.2) on a no-systemd, no-registry Debian 12 VM: one control plane and
# NODES nodes (default 1). Node 1 is the host. Each further node N is a containerd and a
# kubelet of its own in mount and network namespaces of their own (see "extra nodes" below).
#   up.sh build   # build k8s binaries from the Go module proxy into $W/bin (cold ~12-15 min on 2 cores, warm <1 min)
#   up.sh up      # pki + images + containerd + etcd + apiserver + controller-manager + scheduler + kubelet + kube-proxy (~16 s)
#   up.sh test    # smoke test: busybox pod Running + logs, Localhost seccomp profile enforced, in-cluster API, ClusterIP svc
#   up.sh down    # delete pods, stop everything started by `up` (by pid), unmount, remove iptables rules/netns
#   up.sh clean   # down + wipe etcd/containerd/kubelet state (keeps pki, images, bin, $KUBELET_ROOT/seccomp)
#   NODES=2 up.sh up   # a second node; $W/nodes lists each node's paths as seen from the host
#   up.sh in-node 2 CMD...   # run CMD in node 2's mount and network namespaces
#   up.sh status | up.sh step FUNC...   (debug: run individual functions, e.g. `step kubelet_up`)
# Needs: root, Debian packages containerd runc containernetworking-plugins etcd-server busybox-static iptables
# openssl iproute2 (installed by `up` if missing), python3; Go + module proxy only for `build`. See tests/k8s in the repository's README.md.
# Everything lives under $W (default /var/tmp/k8s-e2e) except the kubelet root dir
# ($KUBELET_ROOT, default /var/lib/kubelet, so Localhost seccomp profiles live in
# /var/lib/kubelet/seccomp) and /var/log/pods (kubelet pod logs).
# Afterwards:  export KUBECONFIG=$W/pki/admin.kubeconfig ; PATH=$W/bin:$PATH
set -euo pipefail

W=${K8SE2E_DIR:-/var/tmp/k8s-e2e}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # mkimage.py lives next to this script
BIN=$W/bin
PKI=$W/pki
RUN=$W/run          # pid files
LOG=$W/logs
KUBELET_ROOT=${KUBELET_ROOT:-/var/lib/kubelet}
K8S_VERSION=${K8S_VERSION:-1.34.2}
NODE=${NODE_NAME:-$(hostname | tr 'A-Z' 'a-z')}
NODE_IP=${NODE_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<=NF;i++) if($i=="src"){print $(i+1); exit}}')}
NODE_IP=${NODE_IP:-127.0.0.1}
SVC_CIDR=10.96.0.0/16
SVC_IP=10.96.0.1
POD_CIDR=10.244.0.0/24
CTRD_SOCK=$W/containerd/containerd.sock
SANDBOX_IMAGE=localhost/pause:local
BUSYBOX_IMAGE=localhost/busybox:e2e
NODES=${NODES:-1}
export KUBECONFIG=$PKI/admin.kubeconfig
export PATH=$BIN:$PATH

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
kc() { "$BIN/kubectl" --kubeconfig "$PKI/admin.kubeconfig" "$@"; }
T0=$(date +%s.%N)
lap() { local now; now=$(date +%s.%N); awk -v a="$T0" -v b="$now" -v n="$1" 'BEGIN{printf "[timing] %-28s %6.1fs\n", n, b-a}' | tee -a "$LOG/timings.txt" >&2; T0=$now; }

# start NAME CMD... : run in background, pid in $RUN/NAME.pid, log in $LOG/NAME.log
start() {
  local name=$1; shift
  if [[ -f $RUN/$name.pid ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  setsid "$@" >>"$LOG/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  log "started $name pid $!"
}
waitfor() { # waitfor DESC TIMEOUT CMD...
  local desc=$1 to=$2; shift 2
  for ((i = 0; i < to * 2; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "timeout waiting for $desc"; return 1
}

# ---------------------------------------------------------------- build
cmd_build() {
  mkdir -p "$W/src" "$BIN" "$LOG"; cd "$W/src"
  [[ -f go.mod ]] || {
    go mod init k8se2e
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
      cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
      cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
      kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
      mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
      go mod edit -replace=k8s.io/$m=k8s.io/$m@v0.${K8S_VERSION#1.}; done
    go mod edit -require=k8s.io/kubernetes@v$K8S_VERSION
  }
  local K
  go mod download k8s.io/kubernetes
  K=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null || echo "$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION")
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy; do
    mkdir -p cmd/$c; cp "$K"/cmd/$c/*.go cmd/$c/; rm -f cmd/$c/*_test.go; chmod -R u+w cmd/$c; done
  mkdir -p cmd/pause
  cat > cmd/pause/main.go <<'EOF'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

// minimal sandbox ("pause") process: sleeps until SIGINT/SIGTERM
func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
	os.Exit(0)
}
EOF
  mkdir -p cmd/incluster-check
  cat > cmd/incluster-check/main.go <<'EOF'
// incluster-check: GET https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/<path>
// with the pod's service-account token and CA; proves in-cluster API access works.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	path := "/version"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok, _ := os.ReadFile(sa + "token")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) + path
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("GET %s -> HTTP %d\n%s\n", url, resp.StatusCode, body)
	if resp.StatusCode >= 400 {
		os.Exit(1)
	}
}
EOF
  CGO_ENABLED=0 go build -o "${BUILD_OUT:-$BIN}/pause" ./cmd/pause
  CGO_ENABLED=0 go build -o "${BUILD_OUT:-$BIN}/incluster-check" ./cmd/incluster-check
  go mod tidy
  # stamp the version (otherwise /version says v0.0.0-master+$Format:%H$ and `kubectl version` fails)
  local ld="" pkg minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"; done
  go build -ldflags "$ld" -o "${BUILD_OUT:-$BIN}/" ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet ./cmd/kubectl ./cmd/kube-proxy
}

# ---------------------------------------------------------------- prereqs
prereqs() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
  command -v etcd >/dev/null || need+=(etcd-server)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)   # static: copied into the image
  command -v iptables >/dev/null || need+=(iptables)
  command -v openssl >/dev/null || need+=(openssl)
  command -v ip >/dev/null || need+=(iproute2)   # and nsenter, unshare (util-linux) for NODES > 1
  if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; fi
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl pause incluster-check; do
    [[ -x $BIN/$b ]] || { log "missing $BIN/$b: run '$0 build' first"; exit 1; }; done
  modprobe br_netfilter 2>/dev/null || true
  modprobe overlay 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

# ---------------------------------------------------------------- pki
kubeconfig() { # kubeconfig NAME CERTNAME SERVER
  cat > "$PKI/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: k8se2e
  cluster:
    certificate-authority: $PKI/ca.crt
    server: $3
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: k8se2e
  context: {cluster: k8se2e, user: $2}
current-context: k8se2e
EOF
}
cert() { # cert NAME SUBJ [SAN] -- signed by ca
  local n=$1 subj=$2 san=${3:-}
  openssl genrsa -out "$PKI/$n.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$n.key" -subj "$subj" -out "$PKI/$n.csr" 2>/dev/null
  local ext=$PKI/$n.ext
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi; } > "$ext"
  openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$n.crt" 2>/dev/null
}
pki() {
  [[ -f $PKI/done ]] && return 0
  mkdir -p "$PKI"
  openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=k8se2e-ca" -days 3650 -out "$PKI/ca.crt"
  cert apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE,IP:127.0.0.1,IP:$SVC_IP,IP:$NODE_IP"
  cert kubelet-server "/CN=$NODE" "DNS:$NODE,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  cert admin "/O=system:masters/CN=admin"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  kubeconfig admin admin "https://127.0.0.1:6443"
  kubeconfig kubelet kubelet "https://$NODE_IP:6443"
  kubeconfig controller-manager controller-manager "https://127.0.0.1:6443"
  kubeconfig scheduler scheduler "https://127.0.0.1:6443"
  kubeconfig kube-proxy kube-proxy "https://127.0.0.1:6443"
  touch "$PKI/done"
}

# ---------------------------------------------------------------- images
images_build() {
  mkdir -p "$W/images"
  if [[ ! -f $W/images/pause.tar ]]; then
    rm -rf "$W/images/pause-rootfs"; mkdir -p "$W/images/pause-rootfs"
    cp "$BIN/pause" "$W/images/pause-rootfs/pause"
    python3 "$HERE/mkimage.py" "$W/images/pause-rootfs" "$SANDBOX_IMAGE" "$W/images/pause.tar" /pause
  fi
  if [[ ! -f $W/images/busybox.tar ]]; then
    local r=$W/images/busybox-rootfs; rm -rf "$r"; mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root}
    cp /bin/busybox "$r/bin/busybox"
    cp "$BIN/incluster-check" "$r/bin/incluster-check"
    for a in $("$r/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"; echo 'root:x:0:' > "$r/etc/group"
    chmod 1777 "$r/tmp"
    python3 "$HERE/mkimage.py" "$r" "$BUSYBOX_IMAGE" "$W/images/busybox.tar" /bin/sh
  fi
}
images_import() { # images_import [SOCKET]
  local sock=${1:-$CTRD_SOCK}
  ctr -a "$sock" -n k8s.io images import "$W/images/pause.tar" >/dev/null
  ctr -a "$sock" -n k8s.io images import "$W/images/busybox.tar" >/dev/null
  # extra images: drop OCI/docker archives into $W/images/extra/*.tar
  for t in "$W"/images/extra/*.tar; do [[ -f $t ]] && ctr -a "$sock" -n k8s.io images import "$t" >/dev/null; done
  ctr -a "$sock" -n k8s.io images ls -q
}

# ---------------------------------------------------------------- containerd (private instance)
containerd_conf() { # containerd_conf DIR SOCKET CNI_DIR POD_CIDR BRIDGE NETWORK
  local d=$1 sock=$2 cni=$3 cidr=$4 br=$5 net=$6
  mkdir -p "$d" "$cni/net.d" "$cni/ipam"
  cat > "$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$SANDBOX_IMAGE"
    enable_selinux = false
    # this VM's root has no CAP_SYS_RESOURCE: runc cannot set the negative
    # oom_score_adj kubelet asks for (-998 for sandboxes) -> "can't get final child's PID"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "${RUNC_BIN:-$(command -v runc)}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
EOF
  cat > "$cni/net.d/10-$net.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$net",
  "plugins": [
    {"type": "bridge", "bridge": "$br", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$cni/ipam",
              "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}
containerd_up() {
  containerd_conf "$W/containerd" "$CTRD_SOCK" "$W/cni" "$POD_CIDR" k8se2e0 k8se2e
  start containerd containerd --config "$W/containerd/config.toml"
  waitfor containerd 30 ctr -a "$CTRD_SOCK" version
}

# ---------------------------------------------------------------- control plane
etcd_up() {
  mkdir -p "$W/etcd"
  start etcd etcd --name k8se2e --data-dir "$W/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster k8se2e=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
  waitfor etcd 30 curl -sf http://127.0.0.1:2379/health
}
apiserver_up() {
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=$SVC_CIDR \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --profiling=false --v=1
  waitfor kube-apiserver 120 curl -sf --cacert "$PKI/ca.crt" https://127.0.0.1:6443/readyz
}
cm_up() {
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr=10.244.0.0/16 --node-cidr-mask-size=24 \
    --service-cluster-ip-range=$SVC_CIDR --v=1
}
sched_up() {
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --v=1
}

# ---------------------------------------------------------------- kubelet
kubelet_conf() { # kubelet_conf FILE SOCKET POD_CIDR CERT CGROUP_ROOT
  cat > "$1" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$2
cgroupDriver: cgroupfs
cgroupRoot: $5
failSwapOn: false
failCgroupV1: false
address: 0.0.0.0
port: 10250
readOnlyPort: 0
tlsCertFile: $PKI/$4.crt
tlsPrivateKeyFile: $PKI/$4.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podCIDR: $3
hairpinMode: hairpin-veth
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
}
kubelet_up() {
  mkdir -p "$KUBELET_ROOT/seccomp" "$W/kubelet"
  kubelet_conf "$W/kubelet/config.yaml" "$CTRD_SOCK" "$POD_CIDR" kubelet-server /
  start kubelet "$BIN/kubelet" --config="$W/kubelet/config.yaml" \
    --kubeconfig="$PKI/kubelet.kubeconfig" --root-dir="$KUBELET_ROOT" \
    --hostname-override="$NODE" --node-ip="$NODE_IP" --v=2
  waitfor "node $NODE registered" 120 kc get node "$NODE"
  kc wait --for=condition=Ready node/"$NODE" --timeout=120s >&2
}

# ---------------------------------------------------------------- extra nodes (NODES=2…)
# Node N (N >= 2) is a containerd and a kubelet in a network namespace (k8se2e-nN, a veth
# to the host: host 10.245.N.1, node 10.245.N.2) and a mount namespace of their own
# (pinned at $W/nodeN/ns/mnt), where the node's own directories are mounted over
# /run, the kubelet's root and /var/log/pods, and a bpf filesystem of its own over
# /sys/fs/bpf. Node N's runc, hook and agent therefore see only node N's sockets,
# selection, seccomp profiles and pins; from the host, these are below $W/nodeN.
# Its pods are in 10.244.(N-1).0/24 on bridge k8se2e<N>, its cgroups below /kubepods-nN
# (a name the agent's cgroup search, which looks below kubepods*, finds).
nodevars() { # nodevars N: the variables of node N
  local n=$1
  ND=$W/node$n
  NNAME=$NODE-n$n
  NNS=k8se2e-n$n
  NIP=10.245.$n.2
  NHOST=10.245.$n.1
  NCIDR=10.244.$((n - 1)).0/24
  NSOCK=$ND/containerd/containerd.sock
  NCG=/kubepods-n$n
}
# in_node N CMD...: run CMD in node N's namespaces
in_node() { local n=$1; shift; nodevars "$n"; nsenter --mount="$ND/ns/mnt" --net="/run/netns/$NNS" -- "$@"; }
node_pki() {
  [[ -f $PKI/kubelet-n$1.crt ]] && return 0
  cert "kubelet-server-n$1" "/CN=$NNAME" "DNS:$NNAME,IP:$NIP"
  cert "kubelet-n$1" "/O=system:nodes/CN=system:node:$NNAME"
  kubeconfig "kubelet-n$1" "kubelet-n$1" "https://$NODE_IP:6443"
}
node_ns_up() { # the namespaces, the veth, routes, the service address
  local n=$1 c
  nodevars "$n"
  mkdir -p "$ND"/{ns,run,kubelet/seccomp,logs,containerd} /var/log/pods "$KUBELET_ROOT"
  if [[ ! -e /run/netns/$NNS ]]; then
    ip netns add "$NNS"
    ip link add "k8se2e-h$n" type veth peer name eth0 netns "$NNS"
    ip addr add "$NHOST/30" dev "k8se2e-h$n"; ip link set "k8se2e-h$n" up
    ip -n "$NNS" addr add "$NIP/30" dev eth0
    ip -n "$NNS" link set eth0 up; ip -n "$NNS" link set lo up
    ip -n "$NNS" route add default via "$NHOST"
    ip route replace "$NCIDR" via "$NIP"
    # per network namespace: forwarding for the node's pods; in-cluster clients'
    # https://$SVC_IP:443 to the API server (no kube-proxy on this node)
    nsenter --net="/run/netns/$NNS" sysctl -qw net.ipv4.ip_forward=1
    nsenter --net="/run/netns/$NNS" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
    for c in PREROUTING OUTPUT; do
      nsenter --net="/run/netns/$NNS" iptables -t nat -A $c -d $SVC_IP/32 -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:6443"
    done
  fi
  # The mount namespace, pinned on a private mount (a namespace file cannot be bound
  # on a shared one). slave: the host's unmounts reach its copies, its mounts stay in it.
  if ! grep -q " $ND/ns/mnt " /proc/mounts; then
    grep -q " $ND/ns " /proc/mounts || { mount --bind "$ND/ns" "$ND/ns"; mount --make-private "$ND/ns"; }
    touch "$ND/ns/mnt"
    unshare --mount="$ND/ns/mnt" --propagation slave sh -ec "
      mount --bind '$ND/run' /run
      mount --bind '$ND/kubelet' '$KUBELET_ROOT'
      mount --bind '$ND/logs' /var/log/pods
      mount -t bpf bpf /sys/fs/bpf"
  fi
  # cgroupfs: the kubelet wants its cgroup root in every hierarchy
  for c in /sys/fs/cgroup/*/; do [[ -w $c ]] && mkdir -p "$c${NCG#/}"; done
}
node_up() { # node_up N
  local n=$1
  nodevars "$n"
  node_pki "$n"
  node_ns_up "$n"
  containerd_conf "$ND/containerd" "$NSOCK" "$ND/cni" "$NCIDR" "k8se2e$n" "k8se2e-n$n"
  start "containerd-n$n" nsenter --mount="$ND/ns/mnt" --net="/run/netns/$NNS" -- containerd --config "$ND/containerd/config.toml"
  waitfor "containerd of $NNAME" 30 ctr -a "$NSOCK" version
  images_import "$NSOCK" >/dev/null
  mkdir -p "$ND/kubelet-conf"
  kubelet_conf "$ND/kubelet-conf/config.yaml" "$NSOCK" "$NCIDR" "kubelet-server-n$n" "$NCG"
  start "kubelet-n$n" nsenter --mount="$ND/ns/mnt" --net="/run/netns/$NNS" -- "$BIN/kubelet" --config="$ND/kubelet-conf/config.yaml" \
    --kubeconfig="$PKI/kubelet-n$n.kubeconfig" --root-dir="$KUBELET_ROOT" \
    --hostname-override="$NNAME" --node-ip="$NIP" --v=2
}
node_wait() {
  nodevars "$1"
  waitfor "node $NNAME registered" 120 kc get node "$NNAME"
  kc wait --for=condition=Ready node/"$NNAME" --timeout=120s >&2
}
node_down() { # node_down N
  local n=$1 p
  nodevars "$n"
  stop_pid "kubelet-n$n"
  [[ -S $NSOCK ]] && ctrd_clear "$NSOCK"
  stop_pid "containerd-n$n"
  kill_shims "$NSOCK"
  # the mount namespace goes with its last process and its pin, and its mounts with it
  umount "$ND/ns/mnt" 2>/dev/null || true
  umount "$ND/ns" 2>/dev/null || true
  ip netns delete "$NNS" 2>/dev/null || true   # and the veth pair with it
  ip route del "$NCIDR" 2>/dev/null || true
  for p in /sys/fs/cgroup/*/"${NCG#/}"; do [[ -d $p ]] && cgroup_rmtree "$p"; done
  rm -rf "$ND/cni/ipam" "$ND/run"
  return 0
}
cgroup_rmtree() { find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
# $W/nodes: one line per node, NAME KUBELET_ROOT RUN CONTAINERD_SOCKET MOUNT_NAMESPACE,
# each path as seen from the host ("-": the host's own namespace)
nodes_file() {
  local n
  echo "$NODE $KUBELET_ROOT /run $CTRD_SOCK -" > "$W/nodes.new"
  for ((n = 2; n <= NODES; n++)); do
    nodevars "$n"; echo "$NNAME $ND/kubelet $ND/run $NSOCK $ND/ns/mnt" >> "$W/nodes.new"; done
  mv "$W/nodes.new" "$W/nodes"
}

# ---------------------------------------------------------------- kube-proxy (optional, KUBE_PROXY=1)
proxy_up() {
  [[ -f $PKI/kube-proxy.kubeconfig ]] || { cert kube-proxy "/CN=system:kube-proxy"; kubeconfig kube-proxy kube-proxy "https://127.0.0.1:6443"; }
  mkdir -p "$W/kube-proxy"
  cat > "$W/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: $NODE
bindAddress: $NODE_IP
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0}
EOF
  start kube-proxy "$BIN/kube-proxy" --config="$W/kube-proxy/config.yaml" --v=1
  waitfor kube-proxy 60 curl -sf http://127.0.0.1:10256/livez
}
proxy_down() {
  stop_pid kube-proxy
  [[ -f $W/kube-proxy/config.yaml && -x $BIN/kube-proxy ]] && "$BIN/kube-proxy" --cleanup --config="$W/kube-proxy/config.yaml" >/dev/null 2>&1 || true
}

# In-cluster clients use https://$SVC_IP:443; with no kube-proxy, DNAT it to the apiserver.
svc_nat_up() {
  iptables -t nat -N K8SE2E 2>/dev/null || iptables -t nat -F K8SE2E
  iptables -t nat -A K8SE2E -d $SVC_IP/32 -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:6443"
  iptables -t nat -C PREROUTING -j K8SE2E 2>/dev/null || iptables -t nat -I PREROUTING -j K8SE2E
  iptables -t nat -C OUTPUT -j K8SE2E 2>/dev/null || iptables -t nat -I OUTPUT -j K8SE2E
}
svc_nat_down() {
  iptables -t nat -D PREROUTING -j K8SE2E 2>/dev/null || true
  iptables -t nat -D OUTPUT -j K8SE2E 2>/dev/null || true
  iptables -t nat -F K8SE2E 2>/dev/null || true
  iptables -t nat -X K8SE2E 2>/dev/null || true
}

cmd_up() {
  local n
  mkdir -p "$RUN" "$LOG"; : > "$LOG/timings.txt"
  prereqs;        lap prereqs
  pki;            lap pki
  images_build;   lap images-build
  containerd_up;  lap containerd
  images_import >&2; lap images-import
  etcd_up;        lap etcd
  apiserver_up;   lap kube-apiserver
  cm_up; sched_up
  for ((n = 2; n <= NODES; n++)); do node_up "$n"; done
  kubelet_up;     lap "kubelet (node Ready)"
  for ((n = 2; n <= NODES; n++)); do node_wait "$n"; done
  ((NODES > 1)) && lap "nodes 2-$NODES Ready"
  nodes_file
  # Nodes of an earlier `up` with more NODES stay in etcd, NotReady, and a DaemonSet
  # that tolerates everything would wait for them: they go.
  local name
  for name in $(kc get nodes -o name); do
    grep -q "^${name#node/} " "$W/nodes" || kc delete "$name" >&2
  done
  # kube-proxy after the Node exists (else it waits 30s for it and /healthz stays 503)
  if [[ ${KUBE_PROXY:-1} == 1 && -x $BIN/kube-proxy ]]; then proxy_up; lap kube-proxy; else svc_nat_up; fi
  waitfor "default serviceaccount" 60 kc -n default get sa default
  waitfor "kube-root-ca.crt" 60 kc -n default get cm kube-root-ca.crt
  lap "controller-manager (sa + ca)"
  kc get nodes -o wide >&2
  log "cluster up: export KUBECONFIG=$PKI/admin.kubeconfig PATH=$BIN:\$PATH"
}

# ---------------------------------------------------------------- smoke test
cmd_test() {
  mkdir -p "$KUBELET_ROOT/seccomp/e2e"
  # allow everything except mkdir/mkdirat (EPERM)
  cat > "$KUBELET_ROOT/seccomp/e2e/deny-mkdir.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
EOF
  kc delete pod hello seccomp-deny-mkdir --ignore-not-found --wait=true >&2
  kc apply -f - >&2 <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    command: ["sh", "-c", "echo hello; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: seccomp-deny-mkdir, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    seccompProfile: {type: Localhost, localhostProfile: e2e/deny-mkdir.json}
  containers:
  - name: c
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir /tmp/x; echo mkdir-rc=\$?; sleep 3600"]
EOF
  local t0; t0=$(date +%s)
  kc wait --for=condition=Ready pod/hello pod/seccomp-deny-mkdir --timeout=120s >&2
  echo "pods Ready after $(( $(date +%s) - t0 ))s"
  kc get pods -o wide
  echo "--- logs hello:"; kc logs hello
  echo "--- logs seccomp-deny-mkdir:"; kc logs seccomp-deny-mkdir
  echo "--- exec mkdir in seccomp pod:"; kc exec seccomp-deny-mkdir -- mkdir /tmp/y 2>&1 || true
  echo "--- exec mkdir in unconfined-by-localhost pod:"; kc exec hello -- sh -c 'mkdir /tmp/y && echo ok'
  echo "--- Seccomp field of container pid 1:"
  kc exec seccomp-deny-mkdir -- grep Seccomp /proc/1/status
  kc exec hello -- grep Seccomp /proc/1/status
  echo "--- in-cluster API access via $SVC_IP (serviceaccount token):"
  kc exec hello -- incluster-check /version || true
  kc exec hello -- incluster-check /api/v1/namespaces/default/pods || true   # 403 for system:serviceaccount:default:default = authenticated
  if [[ -f $RUN/kube-proxy.pid ]]; then
    echo "--- ClusterIP Service via kube-proxy (busybox httpd behind svc/web):"
    kc delete pod web --ignore-not-found --wait=true >&2; kc delete svc web --ignore-not-found >&2
    kc apply -f - >&2 <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: $BUSYBOX_IMAGE, imagePullPolicy: Never, ports: [{containerPort: 8080}],
     command: [sh, -c, "mkdir -p /www && echo hello-from-svc > /www/index.html && exec httpd -f -p 8080 -h /www"]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
EOF
    kc wait --for=condition=Ready pod/web --timeout=60s >&2
    local cip; cip=$(kc get svc web -o jsonpath='{.spec.clusterIP}')
    # (busybox-static wget segfaults in the image: static glibc NSS; use nc)
    waitfor "svc web" 20 kc exec hello -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $cip 80 | grep -q hello-from-svc" \
      && echo "pod -> $cip:80 -> web: OK" || echo "pod -> $cip:80 -> web: FAILED"
  fi
  local out; out=$(kc logs seccomp-deny-mkdir)
  if [[ $(kc logs hello) == hello* && $out == *"Operation not permitted"* && $out == *"mkdir-rc=1"* ]]; then
    echo "SMOKE TEST PASSED"; else echo "SMOKE TEST FAILED"; return 1; fi
}

# ---------------------------------------------------------------- down
stop_pid() { # stop_pid NAME
  local f=$RUN/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped $1 ($pid)"
  fi
  rm -f "$f"
}
cni_cleanup() { # remove what CNI DEL would have removed, for sandboxes that died without it
  local line chains=""
  while read -r line; do
    eval "iptables -t nat ${line/#-A /-D }" 2>/dev/null || true
    [[ $line =~ -j\ (CNI-[0-9a-f]+) ]] && chains+=" ${BASH_REMATCH[1]}"
  done < <(iptables-save -t nat | grep -F 'name: \"k8se2e\"' | grep '^-A POSTROUTING')
  for c in $chains; do iptables -t nat -F "$c" 2>/dev/null; iptables -t nat -X "$c" 2>/dev/null || true; done
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    [[ -z $(ip netns pids "${ns##*/}" 2>/dev/null) ]] && ip netns delete "${ns##*/}" 2>/dev/null || true
  done
  ip link del k8se2e0 2>/dev/null || true
  rm -rf "$W/cni/ipam/k8se2e"
}
kube_iptables_cleanup() { # leftovers of kubelet/kube-proxy (KUBE-* chains and jumps to them)
  local t line
  for t in mangle filter nat; do
    while read -r line; do eval "iptables -t $t ${line/#-A /-D }" 2>/dev/null || true
    done < <(iptables-save -t $t 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' || true)
    for c in $(iptables-save -t $t 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -t $t -F "$c" 2>/dev/null || true; done
    for c in $(iptables-save -t $t 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do iptables -t $t -X "$c" 2>/dev/null || true; done
  done
}
# ctrd_clear SOCKET: stop any CRI containers and sandboxes a containerd has left
ctrd_clear() {
  local t c
  for t in $(ctr -a "$1" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$1" -n k8s.io tasks kill -s KILL "$t" 2>/dev/null || true; done
  sleep 1
  for t in $(ctr -a "$1" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr -a "$1" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr -a "$1" -n k8s.io containers ls -q 2>/dev/null); do
    ctr -a "$1" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true; done
}
# kill_shims SOCKET: the shims of one containerd (matched by its socket path)
kill_shims() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q -- "containerd-shim.*-address $1 "; then
      kill -9 "${p#/proc/}" 2>/dev/null && log "killed leftover shim ${p#/proc/}"; fi
  done
}
# nodes_up: how many nodes were brought up (the extra nodes' directories say so)
nodes_up() {
  local n=1
  while [[ -d $W/node$((n + 1)) ]]; do n=$((n + 1)); done
  echo "$n"
}
cmd_down() {
  # controllers first, so nothing re-creates the pods we delete
  stop_pid kube-scheduler; stop_pid kube-controller-manager
  if [[ -f $RUN/kube-apiserver.pid && -f $RUN/kubelet.pid ]]; then
    kc delete pods --all -A --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  stop_pid kubelet
  local n
  for ((n = 2; n <= $(nodes_up); n++)); do node_down "$n"; done
  [[ -S $CTRD_SOCK ]] && ctrd_clear "$CTRD_SOCK"
  stop_pid containerd
  kill_shims "$CTRD_SOCK"
  proxy_down
  stop_pid kube-apiserver; stop_pid etcd
  svc_nat_down
  kube_iptables_cleanup
  cni_cleanup
  # unmount leftovers (pod volumes, sandbox shm, overlay rootfs, kubelet's self bind-mount)
  { grep -E " ($KUBELET_ROOT|$W)[/ ]" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  log "down"
}
cmd_status() {
  local n
  for n in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet $(for ((n = 2; n <= $(nodes_up); n++)); do echo containerd-n$n kubelet-n$n; done); do
    if [[ -f $RUN/$n.pid ]] && kill -0 "$(cat "$RUN/$n.pid")" 2>/dev/null; then echo "$n running pid $(cat "$RUN/$n.pid")"; else echo "$n stopped"; fi
  done
  kc get nodes -o wide 2>/dev/null || true
}

case ${1:-up} in
  build) cmd_build ;;
  up) cmd_up ;;
  test) cmd_test ;;
  down) cmd_down ;;
  status) cmd_status ;;
  in-node) shift; in_node "$@" ;;   # in-node N CMD...: e.g. in-node 2 ls /sys/fs/bpf
  step) shift; mkdir -p "$RUN" "$LOG"; for f in "$@"; do "$f"; lap "$f"; done ;;
  # clean: also wipe cluster state (etcd, images, kubelet state except $KUBELET_ROOT/seccomp, pod logs)
  clean) cmd_down
    rm -rf "$W/etcd" "$W/containerd" "$W/cni/ipam" "$RUN" /var/log/pods "$W"/node[0-9]* "$W/nodes"
    find "$KUBELET_ROOT" -mindepth 1 -maxdepth 1 ! -name seccomp -exec rm -rf {} + 2>/dev/null || true ;;
  *) echo "usage: $0 build|up|test|down|status|clean|in-node N CMD..."; exit 2 ;;
esac
