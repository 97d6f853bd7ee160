"""The `ablate` command: one module per subcommand (main.COMMANDS), each a thin
entry point that reads params, calls the library and writes outputs. Each imports
`common` first: it checks KERAS_BACKEND and quiets TensorFlow before Keras loads."""
