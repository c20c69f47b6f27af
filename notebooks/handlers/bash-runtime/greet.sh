# The function for the bash runtime: gets the event (JSON) as $1, prints the answer (JSON).
handler() {
  echo "greet.sh got: $1" >&2
  printf '{"runtime": "bash", "echo": %s}' "$1"
}
