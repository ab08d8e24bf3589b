// Command enqueue adds one job to a jobwire broker, waits for a worker to finish or fail it
// (polling GetJob) and prints the job as one JSON line: {"id":..,"state":..,"result":..}.
//
//	enqueue -target 127.0.0.1:50051 -task add -args '[2, 3]'
//
// A failed call prints its gRPC status code, and for INVALID_ARGUMENT the offending field
// (from the google.rpc.BadRequest detail), on stderr and exits with status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
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
	flag.Parse()

	if err := run(*target, *namespace, *task, *argsJSON, *timeout, *interval); err != nil {
		report(err)
		os.Exit(1)
	}
}

func run(target, namespace, task, argsJSON string, timeout, interval time.Duration) error {
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
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure())
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
