/* manpage.c -- presence-ingest(1) in roff, written from the option table */
#include "presence/manpage.h"

#include <string.h>

#include "presence/config.h"

#include "config_int.h"

/* Text for roff: a backslash is \e, a hyphen \- (so that it can be searched
 * for and copied), and a line may not start with '.' or '\'' (a request). */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else if (*s == '\n') {
            fputc('\n', out);
            if (s[1] == '.' || s[1] == '\'')
                fputs("\\&", out);
        } else
            fputc(*s, out);
    }
}

/* The flag as --help shows it, bold name and italic argument. */
static void flag(FILE *out, const pi_opt *o)
{
    fputs("\\fB\\-\\-", out);
    roff(out, o->name);
    fputs("\\fR", out);
    if (o->type == OPT_FLAG)
        return;
    fputs(" \\fI", out);
    roff(out, o->type == OPT_INT    ? "N"
              : o->type == OPT_ENUM ? o->choices
                                    : "VALUE");
    fputs("\\fR", out);
}

/* ", "-separated names of the commands whose bits are in bits. */
static void commands_of(FILE *out, unsigned bits, const pi_manpage_cmd *cmds,
                        size_t n_cmds)
{
    const char *sep = "";

    if (bits == PI_CMD_ALL) {
        fputs("every command", out);
        return;
    }
    for (size_t i = 0; i < n_cmds; i++) {
        if (bits & cmds[i].bit) {
            fprintf(out, "%s\\fB%s\\fR", sep, cmds[i].name);
            sep = ", ";
        }
    }
}

static void option(FILE *out, const pi_opt *o, const pi_manpage_cmd *cmds,
                   size_t n_cmds)
{
    fputs(".TP\n", out);
    flag(out, o);
    fputc('\n', out);
    roff(out, o->help);
    fputs(".\n", out);
    if (o->def && o->type != OPT_FLAG) {
        fputs("Default: ", out);
        roff(out, o->def);
        fputs(".\n", out);
    }
    if (o->type == OPT_INT)
        fprintf(out, "Range: %lld to %lld.\n", (long long)o->min,
                (long long)o->max);
    if (o->env)
        fprintf(out, "Environment: \\fB%s\\fR.\n", o->env);
    fputs("Config file: \\fB", out);
    roff(out, o->name);
    fputs(" = \\fR\\fIvalue\\fR. Commands: ", out);
    commands_of(out, o->cmds, cmds, n_cmds);
    fputs(".\n", out);
}

static void synopsis(FILE *out, const pi_manpage_cmd *c)
{
    fprintf(out, ".br\n\\fBpresence\\-ingest %s\\fR", c->name);
    if (c->bit)
        fputs(" [\\fIOPTIONS\\fR]", out);
    if (c->args) {
        fputs(" \\fI", out);
        roff(out, c->args);
        fputs("\\fR", out);
    }
    fputc('\n', out);
}

/* Under each command, the options it takes, in table order. */
static void command(FILE *out, const pi_manpage_cmd *c, const pi_opt *opts,
                    size_t n)
{
    const char *sep = "";

    fprintf(out, ".TP\n\\fB%s\\fR", c->name);
    if (c->args) {
        fputs(" \\fI", out);
        roff(out, c->args);
        fputs("\\fR", out);
    }
    fputc('\n', out);
    roff(out, c->summary);
    fputs(".\n", out);
    if (c->bit == 0)
        return;
    fputs("Options:", out);
    for (size_t i = 0; i < n; i++) {
        if (!(opts[i].cmds & c->bit))
            continue;
        fprintf(out, "%s \\fB\\-\\-", sep);
        roff(out, opts[i].name);
        fputs("\\fR", out);
        sep = ",";
    }
    fputs(", \\fB\\-\\-config\\fR", out);
    if (c->bit & (PI_CMD_RUN | PI_CMD_REPLAY))
        fputs(", \\fB\\-X\\fR", out);
    fputs(".\n", out);
}

static const char description[] =
    ".SH DESCRIPTION\n"
    "presence\\-ingest consumes CloudConnect presence notifications (device\n"
    "connect, disconnect, failed_connect and declare_asset events) from an\n"
    "Apache Kafka topic, decodes and validates them, and writes them into\n"
    "PostgreSQL in batches, idempotently on their 64\\-bit id: a batch's "
    "rows,\n"
    "its rejects and its Kafka offsets commit in one transaction, so each\n"
    "presence takes effect exactly once through crashes, restarts,\n"
    "rebalances and outages. Input that breaks the field rules is recorded in\n"
    "\\fBpresence_rejects\\fR with a stable code instead of stopping the\n"
    "pipeline. The database also holds the connectivity reports (status,\n"
    "sessions, uptime, reasons, flapping) as views and functions, which\n"
    "\\fBpresence\\-ingest report\\fR prints.\n"
    ".PP\n"
    "Every option can be given as a flag, as an environment variable (where\n"
    "one is listed) or as a \\fIkey\\fR = \\fIvalue\\fR line of a\n"
    "\\fB\\-\\-config\\fR file, in that order of precedence; otherwise its\n"
    "default applies. A bad value, an unknown option or librdkafka property,\n"
    "or an unreachable service ends the command with one line on standard\n"
    "error naming the problem and a non\\-zero exit status.\n";

static const char common_options[] =
    ".TP\n"
    "\\fB\\-\\-config\\fR \\fIFILE\\fR\n"
    "Read \\fIkey\\fR = \\fIvalue\\fR lines with the option names above\n"
    "(\\fB#\\fR starts a comment); \\fBkafka.\\fR\\fIKEY\\fR = \\fIVALUE\\fR\n"
    "lines are librdkafka properties. Flags and environment variables\n"
    "override the file. Environment: \\fBPRESENCE_CONFIG\\fR. Commands: every\n"
    "command.\n"
    ".TP\n"
    "\\fB\\-X\\fR \\fIKEY\\fR=\\fIVALUE\\fR\n"
    "Any librdkafka property, passed through as kcat does; librdkafka's own\n"
    "error text is shown for a bad one. \\fBenable.auto.commit\\fR and\n"
    "\\fBenable.auto.offset.store\\fR are managed and refused. Commands:\n"
    "\\fBrun\\fR, \\fBreplay\\fR.\n"
    ".TP\n"
    "\\fB\\-\\-help\\fR\n"
    "Print the command's options, with their defaults, ranges and\n"
    "environment variables, and exit 0.\n"
    ".TP\n"
    "\\fB\\-\\-print\\-config\\fR\n"
    "(\\fBrun\\fR, \\fBreplay\\fR) Print a commented sample configuration\n"
    "file with every option and its default, and exit 0.\n";

static const char environment_tail[] =
    ".TP\n"
    "\\fBPRESENCE_CONFIG\\fR\n"
    "The configuration file, when \\fB\\-\\-config\\fR is not given.\n"
    ".TP\n"
    "\\fBPRESENCE_KAFKA_SASL_PASSWORD\\fR\n"
    "The SASL password (librdkafka's \\fBsasl.password\\fR), kept off the\n"
    "command line; given together with another source of it, refused.\n"
    ".TP\n"
    "\\fBPRESENCE_MIGRATIONS_DIR\\fR\n"
    "\\fBmigrate\\fR applies the numbered files of this directory instead of\n"
    "the migrations compiled into the binary (to try a migration out).\n"
    ".TP\n"
    "\\fBPGHOST\\fR, \\fBPGDATABASE\\fR, \\fBPGUSER\\fR, "
    "\\fBPGPASSWORD\\fR, \\fBPGPASSFILE\\fR, ...\n"
    "libpq's own environment, used for what \\fB\\-\\-pg\\fR (or\n"
    "\\fBPRESENCE_PG\\fR) does not say. \\fBPGPASSWORD\\fR is never logged.\n";

static const char exit_status[] =
    ".SH EXIT STATUS\n"
    ".TP\n"
    ".B 0\n"
    "Success: \\fBrun\\fR stopped cleanly on SIGTERM or SIGINT; \\fBload\\fR\n"
    "and \\fBreplay\\fR accounted for every message (rejects included).\n"
    ".TP\n"
    ".B 1\n"
    "Infrastructure failure: the database or a broker unreachable or refusing\n"
    "for good, a fatal error, \\fB\\-\\-http\\-listen\\fR address in use, an\n"
    "interrupted \\fBload\\fR or \\fBreplay\\fR, a stop that could not finish\n"
    "by \\fB\\-\\-shutdown\\-timeout\\-ms\\fR.\n"
    ".TP\n"
    ".B 2\n"
    "Bad usage: an unknown command or option, a bad value, an unreadable\n"
    "file, options that do not fit together.\n"
    ".TP\n"
    ".B 3\n"
    "The database schema is older than this binary: run\n"
    "\\fBpresence\\-ingest migrate\\fR.\n";

static const char files[] =
    ".SH FILES\n"
    ".TP\n"
    ".I presence\\-ingest.conf\n"
    "A \\fB\\-\\-config\\fR file; \\fBpresence\\-ingest run "
    "\\-\\-print\\-config\\fR prints\n"
    "the documented sample (\\fIdeploy/presence\\-ingest.conf.sample\\fR in\n"
    "the source tree).\n"
    ".TP\n"
    ".I ~/.pgpass\n"
    "libpq's password file (or \\fBPGPASSFILE\\fR, or \\fBpassfile=\\fR in "
    "the\n"
    "conninfo): the way to keep the database password off the command line.\n"
    ".PP\n"
    "The service writes no file. The schema's migrations are compiled into\n"
    "the binary.\n";

static const char examples[] =
    ".SH EXAMPLES\n"
    "Create or update the schema, then consume a topic with a consumer "
    "group:\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "presence\\-ingest migrate \\-\\-pg 'host=db user=ingest dbname=fleet'\n"
    "presence\\-ingest run \\-\\-brokers k1:9092,k2:9092 \\-\\-topic "
    "presences \\e\n"
    "    \\-\\-group presence\\-ingest \\-\\-pg 'host=db user=ingest "
    "dbname=fleet'\n"
    ".RE\n"
    ".fi\n"
    ".PP\n"
    "Re\\-read the last two days of the topic (by Kafka timestamp), without "
    "a\n"
    "consumer group:\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "presence\\-ingest replay \\-\\-brokers k1:9092 \\-\\-topic presences "
    "\\-\\-from \\-2d\n"
    ".RE\n"
    ".fi\n"
    ".PP\n"
    "Load one message value per line from a file; loading it again stores\n"
    "nothing:\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "presence\\-ingest load presences.jsonl\n"
    "messages=3 stored=3 duplicates=0 conflicts=0 rejected=0 skipped=0\n"
    ".RE\n"
    ".fi\n"
    ".PP\n"
    "Which devices are online, and one device's sessions of the last day:\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "presence\\-ingest report status \\-\\-format table\n"
    "presence\\-ingest report sessions \\-\\-asset 357322041802978 "
    "\\-\\-since \\-1d\n"
    ".RE\n"
    ".fi\n"
    ".PP\n"
    "Keep 400 days of presences (daily, from a timer):\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "presence\\-ingest retention \\-\\-keep 400d\n"
    ".RE\n"
    ".fi\n";

static const char see_also[] =
    ".SH SEE ALSO\n"
    ".BR psql (1),\n"
    ".BR kcat (1).\n"
    "In the source tree: \\fIREADME.md\\fR, \\fIdocs/contract.md\\fR (what\n"
    "the service promises), \\fIdocs/operations.md\\fR,\n"
    "\\fIdocs/reports.md\\fR, \\fIdocs/architecture.md\\fR.\n";

void pi_manpage_print(FILE *out, const pi_manpage_cmd *cmds, size_t n_cmds,
                      const char *version)
{
    size_t n;
    const pi_opt *opts = pi_config__options(&n);

    fputs(".\\\" Generated by presence-ingest --print-manpage from the option\n"
          ".\\\" table (lib/config/config.c): edit that, not this.\n",
          out);
    fprintf(out,
            ".TH PRESENCE\\-INGEST 1 \"\" \"presence\\-ingest %s\" "
            "\"User Commands\"\n"
            ".nh\n.ad l\n",
            version);
    fputs(".SH NAME\n"
          "presence\\-ingest \\- consume device presence events from Kafka "
          "into PostgreSQL, exactly once\n"
          ".SH SYNOPSIS\n",
          out);
    for (size_t i = 0; i < n_cmds; i++)
        synopsis(out, &cmds[i]);
    fputs(description, out);

    fputs(".SH COMMANDS\n", out);
    for (size_t i = 0; i < n_cmds; i++)
        command(out, &cmds[i], opts, n);

    fputs(".SH OPTIONS\n", out);
    for (size_t i = 0; i < n; i++)
        option(out, &opts[i], cmds, n_cmds);
    fputs(common_options, out);

    fputs(".SH ENVIRONMENT\n", out);
    for (size_t i = 0; i < n; i++) {
        if (opts[i].env == NULL)
            continue;
        fprintf(out, ".TP\n\\fB%s\\fR\nSame as \\fB\\-\\-", opts[i].env);
        roff(out, opts[i].name);
        fputs("\\fR.\n", out);
    }
    fputs(environment_tail, out);
    fputs(exit_status, out);
    fputs(files, out);
    fputs(examples, out);
    fputs(see_also, out);
}
