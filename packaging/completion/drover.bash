# bash completion for drover.  The words come from `drover __complete`,
# which reads the command tables drover is built from (and, for object
# names, the server drover is logged in to, with a 2 s timeout).
_drover()
{
    local IFS=$'\n'
    local cur=${COMP_WORDS[COMP_CWORD]}

    COMPREPLY=($(command "${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
}
# -o default: file names where drover has nothing to offer (--password-file).
complete -o bashdefault -o default -F _drover drover
