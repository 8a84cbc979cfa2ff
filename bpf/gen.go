package bpf

//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type record -type counters -type denied_key -type noted -type arg_key recorder recorder.bpf.c -- -I./headers -O2 -g -Wall -Werror -mcpu=v3
