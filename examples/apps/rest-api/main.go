// Command rest-api is the tutorials' rest-api-go stock example: it answers
// "Welcome to the <RESOURCE> app!" on $PORT (RESOURCE defaults to stock).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	resource := os.Getenv("RESOURCE")
	if resource == "" {
		resource = "stock"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Welcome to the %s app!\n", resource)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Printf("rest-api: listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
