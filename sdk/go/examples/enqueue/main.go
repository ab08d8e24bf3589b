// Command enqueue adds one job to a jobwire broker, waits for a worker to finish or fail it
// (polling GetJob) and prints the job as one JSON line: {"id":..,"state":..,"result":..}.
//
//	enqueue -target 127.0.0.1:50051 -task add -args '[2, 3]'
//	enqueue -target jobwire.example:50051 -tls-ca ca.crt -token "$JOBWIRE_TOKEN" -task add
//
// -token (default $JOBWIRE_TOKEN) is sent as "authorization: Bearer <token>" per-RPC
// credentials. -tls-ca (default $JOBWIRE_TLS_CA) turns TLS on, trusting that PEM bundle;
// -tls-cert and -tls-key present a client certificate (mTLS); -tls (no CA) trusts the system's
// roots. Without TLS the token still goes out, for a service mesh whose sidecars encrypt.
//
// A failed call prints its gRPC status code, and for INVALID_ARGUMENT the offending field
// (from the google.rpc.BadRequest detail), on stderr and exits with status 1.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	jobwirev1 "jobwire.dev/sdk/go/gen/jobwire/v1"
)

func main() {
	target := flag.String("target", "127.0.0.1:50051", "broker address host:port")
	namespace := flag.String("namespace", "", "namespace (empty: the broker's default)")
	task := flag.String("task", "", "task name")
	argsJSON := flag.String("args", "[]", "task arguments as a JSON array")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for the result")
	interval := flag.Duration("interval", 100*time.Millisecond, "how often to poll GetJob")
	var sec security
	flag.StringVar(&sec.token, "token", os.Getenv("JOBWIRE_TOKEN"), "bearer token (env JOBWIRE_TOKEN)")
	flag.BoolVar(&sec.tls, "tls", false, "use TLS with the system's roots")
	flag.StringVar(&sec.ca, "tls-ca", os.Getenv("JOBWIRE_TLS_CA"), "use TLS, trusting this PEM CA bundle (env JOBWIRE_TLS_CA)")
	flag.StringVar(&sec.cert, "tls-cert", "", "client certificate (PEM) for mTLS")
	flag.StringVar(&sec.key, "tls-key", "", "client certificate's key (PEM)")
	flag.StringVar(&sec.serverName, "tls-server-name", "", "name the broker's certificate must carry")
	flag.Parse()

	opts, err := sec.dialOptions()
	if err == nil {
		err = run(*target, *namespace, *task, *argsJSON, *timeout, *interval, opts)
	}
	if err != nil {
		report(err)
		os.Exit(1)
	}
}

// security holds the token and TLS flags.
type security struct {
	token, ca, cert, key, serverName string
	tls                              bool
}

// dialOptions turns the flags into transport credentials and per-RPC bearer credentials.
func (s security) dialOptions() ([]grpc.DialOption, error) {
	secure := s.tls || s.ca != "" || s.cert != ""
	var opts []grpc.DialOption
	if secure {
		config := &tls.Config{ServerName: s.serverName, MinVersion: tls.VersionTLS12}
		if s.ca != "" {
			pem, err := os.ReadFile(s.ca)
			if err != nil {
				return nil, err
			}
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-tls-ca %s: no PEM certificate", s.ca)
			}
		}
		if s.cert != "" || s.key != "" {
			pair, err := tls.LoadX509KeyPair(s.cert, s.key)
			if err != nil {
				return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
			}
			config.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if s.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{s.token, secure}))
	}
	return opts, nil
}

// bearer is per-RPC credentials sending "authorization: Bearer <token>".
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only when TLS is off (a mesh sidecar encrypts instead).
func (b bearer) RequireTransportSecurity() bool { return b.secure }

func run(target, namespace, task, argsJSON string, timeout, interval time.Duration, opts []grpc.DialOption) error {
	var raw []interface{}
	if err := json.Unmarshal([]byte(argsJSON), &raw); err != nil {
		return fmt.Errorf("-args must be a JSON array: %w", err)
	}
	args, err := structpb.NewList(raw)
	if err != nil {
		return fmt.Errorf("-args: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	jobs := jobwirev1.NewJobServiceClient(conn)

	enqueued, err := jobs.Enqueue(ctx, &jobwirev1.EnqueueRequest{
		Namespace: namespace, Task: task, Args: args,
	})
	if err != nil {
		return err
	}
	for {
		got, err := jobs.GetJob(ctx, &jobwirev1.GetJobRequest{Namespace: namespace, Id: enqueued.Id})
		if err != nil {
			return err
		}
		job := got.GetJob()
		if job == nil {
			return fmt.Errorf("job %d vanished", enqueued.Id)
		}
		if job.State == jobwirev1.State_STATE_FINISHED || job.State == jobwirev1.State_STATE_FAILED {
			return printJob(job)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// printJob writes the job's id, state ("finished" or "failed") and result as one JSON line.
func printJob(job *jobwirev1.Job) error {
	result := json.RawMessage("null")
	if job.Result != nil {
		b, err := protojson.Marshal(job.Result)
		if err != nil {
			return err
		}
		result = b
	}
	state := map[jobwirev1.State]string{
		jobwirev1.State_STATE_FINISHED: "finished", jobwirev1.State_STATE_FAILED: "failed",
	}[job.State]
	line, err := json.Marshal(struct {
		ID     int64           `json:"id"`
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
	}{job.Id, state, result})
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// report prints a failure: the status code as gRPC names it (INVALID_ARGUMENT) and message, then one line per BadRequest field.
func report(err error) {
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintln(os.Stderr, "error: DEADLINE_EXCEEDED: no result in time")
			return
		}
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "error: %s: %s\n", code.Code(st.Code()).String(), st.Message())
	for _, detail := range st.Details() {
		if br, ok := detail.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(os.Stderr, "field %s: %s\n", v.GetField(), v.GetDescription())
			}
		}
	}
}
