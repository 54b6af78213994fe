-- Prints a bash or zsh completion script for auditrun: its options, the workflows' names and their flags
local cli = require("auditrun.cli")

local opts = cli.parse({
  name = "completion",
  summary = "Prints a bash or zsh completion script for auditrun: the host's options, the bundled workflows' names "
    .. "and each workflow's flags and their values.",
  description = "bash: load it from ~/.bashrc with source <(auditrun completion bash), or save it as "
    .. "~/.local/share/bash-completion/completions/auditrun. zsh: save it as _auditrun in a folder of $fpath. "
    .. "It is made from the workflows this auditrun has: make it again after an upgrade.",
  examples = { "auditrun completion bash", "auditrun completion zsh" },
  flags = function(p) p:argument("shell", "The shell the script is for."):choices { "bash", "zsh" } end,
}, ...)

local parser = cli.command_line(cli.bundled_specs())
io.stdout:write(opts.shell == "zsh" and parser:get_zsh_complete() or parser:get_bash_complete())
