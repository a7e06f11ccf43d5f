package cli

import (
	"fmt"
	"strings"
)

// completionWords are the words to complete: for each command, its flags.
func completionWords() map[string][]string {
	words := map[string][]string{}
	globals := []string{"--endpoint-url", "--region", "--profile", "--output", "--color", "--no-paginate",
		"--no-sign-request", "--no-verify-ssl", "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout", "--debug", "--help"}
	for _, op := range modelOperations {
		var flags []string
		for _, f := range operationFlags(op) {
			flags = append(flags, f.cli)
			if f.shape.Type == "boolean" {
				flags = append(flags, "--no-"+strings.TrimPrefix(f.cli, "--"))
			}
		}
		flags = append(flags, "--cli-input-json", "--generate-cli-skeleton")
		if _, ok := paginators[op.Name]; ok {
			flags = append(flags, "--starting-token", "--page-size", "--max-items")
		}
		words[commandName(op.Name)] = append(flags, globals...)
	}
	words["bot"] = append(botFlagNames(), "--endpoint-url", "--region", "--profile", "--output", "--help")
	words["drain"] = []string{"--endpoint-url", "--region", "--profile", "--help"}
	words["completion"] = []string{"bash", "zsh"}
	return words
}

// completion prints a completion script: ivsrt completion bash|zsh.
func completion(args []string, io IO) int {
	if len(args) != 1 || args[0] != "bash" && args[0] != "zsh" {
		fmt.Fprintln(io.Stderr, "usage: ivsrt completion bash|zsh\n\n"+
			"  bash: source <(ivsrt completion bash)       (or save it in /etc/bash_completion.d/ivsrt)\n"+
			"  zsh:  source <(ivsrt completion zsh)        (or save it as _ivsrt in a folder of $fpath)")
		return ExitUsage
	}
	words := completionWords()
	cmds := append(Commands(), "bot", "drain", "completion", "help")
	var b strings.Builder
	if args[0] == "bash" {
		b.WriteString("# bash completion for ivsrt: source <(ivsrt completion bash)\n_ivsrt() {\n")
		b.WriteString("    local cur prev cmd\n    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
		b.WriteString("    case \"$prev\" in\n        --output) COMPREPLY=($(compgen -W \"json text table\" -- \"$cur\")); return ;;\n")
		b.WriteString("        --color) COMPREPLY=($(compgen -W \"on off auto\" -- \"$cur\")); return ;;\n")
		b.WriteString("        --cli-input-json|--ca-bundle) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n    esac\n")
		b.WriteString("    cmd=\"\"\n    for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n        case \"$w\" in -*) ;; *) cmd=\"$w\"; break ;; esac\n    done\n")
		fmt.Fprintf(&b, "    if [ -z \"$cmd\" ]; then\n        COMPREPLY=($(compgen -W %q -- \"$cur\"))\n        return\n    fi\n", strings.Join(cmds, " "))
		b.WriteString("    case \"$cmd\" in\n")
		for _, c := range sortedKeys(words) {
			fmt.Fprintf(&b, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c, strings.Join(words[c], " "))
		}
		b.WriteString("    esac\n}\ncomplete -o default -F _ivsrt ivsrt\n")
	} else {
		b.WriteString("#compdef ivsrt\n# zsh completion for ivsrt: source <(ivsrt completion zsh)\n_ivsrt() {\n")
		b.WriteString("    local cmd w\n    case \"${words[CURRENT-1]}\" in\n        --output) compadd json text table; return ;;\n")
		b.WriteString("        --color) compadd on off auto; return ;;\n        --cli-input-json|--ca-bundle) _files; return ;;\n    esac\n")
		b.WriteString("    for w in \"${(@)words[2,CURRENT-1]}\"; do\n        case \"$w\" in -*) ;; *) cmd=\"$w\"; break ;; esac\n    done\n")
		fmt.Fprintf(&b, "    if [[ -z \"$cmd\" ]]; then\n        compadd -- %s\n        return\n    fi\n", strings.Join(cmds, " "))
		b.WriteString("    case \"$cmd\" in\n")
		for _, c := range sortedKeys(words) {
			fmt.Fprintf(&b, "        %s) compadd -- %s ;;\n", c, strings.Join(words[c], " "))
		}
		b.WriteString("    esac\n}\nif (( $+functions[compdef] )); then\n    compdef _ivsrt ivsrt\nfi\n")
	}
	fmt.Fprint(io.Stdout, b.String())
	return ExitOK
}
