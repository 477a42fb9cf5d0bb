/* completion.c -- a bash completion script generated from the option table */
#include "presence/completion.h"

#include <string.h>

#include "config_int.h"
#include "presence/config.h"

/* Options whose value is a file name (the table has no type for it). */
static int file_valued(const char *name)
{
    return strcmp(name, "config") == 0 ||
           strcmp(name, "sasl-password-file") == 0;
}

/* Option i of the table (config_int.h): its name, its choices (an
 * enumerated option's; else NULL), whether it takes a value (not a bare
 * flag), its commands. 0 past the last option. */
static int option_at(size_t i, const char **name, const char **choices,
                     int *takes_value, unsigned *cmds)
{
    size_t n;
    const pi_opt *o = pi_config__options(&n);

    if (i >= n)
        return 0;
    *name = o[i].name;
    *choices = o[i].type == OPT_ENUM ? o[i].choices : NULL;
    *takes_value = o[i].type != OPT_FLAG;
    *cmds = o[i].cmds;
    return 1;
}

/* "a|b|c" as "a b c". */
static void put_choices(FILE *out, const char *choices)
{
    for (const char *p = choices; *p; p++)
        fputc(*p == '|' ? ' ' : *p, out);
}

/* The options of the commands with PI_CMD_* bits `opts`, space-separated. */
static void put_options(FILE *out, unsigned opts)
{
    const char *name, *choices;
    int takes_value;
    unsigned cmds;

    fprintf(out, "--help --config");
    for (size_t i = 0; option_at(i, &name, &choices, &takes_value, &cmds);
         i++) {
        if (cmds & opts)
            fprintf(out, " --%s", name);
    }
    if (opts & (PI_CMD_RUN | PI_CMD_REPLAY))
        fprintf(out, " --print-config -X");
}

/* case "$prev" arms: what follows an option that takes a value. */
static void put_values(FILE *out)
{
    const char *name, *choices;
    int takes_value;
    unsigned cmds;
    int first = 1;

    for (size_t i = 0; option_at(i, &name, &choices, &takes_value, &cmds);
         i++) {
        if (choices) {
            fprintf(out, "        --%s)\n            COMPREPLY=($(compgen -W '",
                    name);
            put_choices(out, choices);
            fprintf(out, "' -- \"$cur\"))\n            return ;;\n");
        }
    }
    fprintf(out, "        --config");
    for (size_t i = 0; option_at(i, &name, &choices, &takes_value, &cmds);
         i++) {
        if (file_valued(name))
            fprintf(out, " | --%s", name);
    }
    fprintf(out, ")\n            COMPREPLY=($(compgen -f -- \"$cur\"))\n"
                 "            return ;;\n");
    /* Any other value: nothing to offer (not the options). */
    fprintf(out, "        ");
    for (size_t i = 0; option_at(i, &name, &choices, &takes_value, &cmds);
         i++) {
        if (takes_value && !choices && !file_valued(name)) {
            fprintf(out, "%s--%s", first ? "" : " | ", name);
            first = 0;
        }
    }
    fprintf(out, " | -X)\n            return ;;\n");
}

void pi_completion_print_bash(FILE *out, const pi_completion_cmd *cmds,
                              size_t n)
{
    fprintf(out,
            "# bash completion for presence-ingest -*- shell-script -*-\n"
            "# Generated from the option table by `presence-ingest completion "
            "bash`;\n"
            "# do not edit (lib/config/completion.c).\n"
            "_presence_ingest()\n"
            "{\n"
            "    local cur prev cmd opts words='' files=0\n"
            "    cur=${COMP_WORDS[COMP_CWORD]}\n"
            "    prev=${COMP_WORDS[COMP_CWORD-1]}\n"
            "    COMPREPLY=()\n"
            "    if [[ $COMP_CWORD -eq 1 ]]; then\n"
            "        COMPREPLY=($(compgen -W '");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? " " : "", cmds[i].name);
    fprintf(out, "' -- \"$cur\"))\n"
                 "        return\n"
                 "    fi\n"
                 "    cmd=${COMP_WORDS[1]}\n"
                 "    # --name=VALUE: bash splits the word at '='.\n"
                 "    if [[ $cur == = ]]; then\n"
                 "        cur=''\n"
                 "    elif [[ $prev == = && $COMP_CWORD -ge 3 ]]; then\n"
                 "        prev=${COMP_WORDS[COMP_CWORD-2]}\n"
                 "    fi\n"
                 "    case $prev in\n");
    put_values(out);
    fprintf(out, "    esac\n"
                 "    case $cmd in\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "        %s)\n            opts='", cmds[i].name);
        if (cmds[i].opts)
            put_options(out, cmds[i].opts);
        else
            fprintf(out, "--help");
        fprintf(out, "'\n");
        if (cmds[i].words) {
            fprintf(out, "            words='");
            for (size_t w = 0; cmds[i].words[w]; w++)
                fprintf(out, "%s%s", w ? " " : "", cmds[i].words[w]);
            fprintf(out, "'\n");
        }
        if (cmds[i].files)
            fprintf(out, "            files=1\n");
        fprintf(out, "            ;;\n");
    }
    fprintf(out, "        *)\n"
                 "            return ;;\n"
                 "    esac\n"
                 "    if [[ $cur == -* ]]; then\n"
                 "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
                 "    elif [[ -n $words ]]; then\n"
                 "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
                 "    elif [[ $files == 1 ]]; then\n"
                 "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
                 "    fi\n"
                 "}\n"
                 "complete -F _presence_ingest presence-ingest\n");
}
