// Command helloworld is the tutorials' helloworld-go: it answers
// "Hello <TARGET>!" on $PORT (TARGET defaults to World). knd's build also
// reads the target from the file TARGET_FILE names, when set, at every
// request, so the tutorial can show a mounted ConfigMap changing.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	target := os.Getenv("TARGET")
	if target == "" {
		target = "World"
	}
	file := os.Getenv("TARGET_FILE")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t := target
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			t = strings.TrimSpace(string(b))
		}
		fmt.Fprintf(w, "Hello %s!\n", t)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("helloworld: listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
