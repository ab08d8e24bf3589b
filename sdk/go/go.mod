module jobwire.dev/sdk/go

go 1.19

// The versions Debian 12 packages (golang-google-grpc-dev, golang-google-protobuf-dev,
// golang-google-genproto-dev, golang-github-golang-protobuf-1-5-dev); build.sh builds against
// exactly those, offline. Building in module mode with network access: `go mod tidy` first.
require (
	github.com/golang/protobuf v1.5.2 // indirect
	google.golang.org/genproto v0.0.0-20200413115906-b5235f65be36
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
