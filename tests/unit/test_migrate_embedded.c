/* test_migrate_embedded.c -- the migrations compiled into the binary (made
 * from migrations/ by embed.sh at build time) are the files of migrations/,
 * every one, byte for byte, in file name order */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg_int.h"
#include "presence/migrate.h"

/* The whole of a file, NUL-terminated. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* How many NNNN_*.sql files the directory holds. */
static size_t migration_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        n += de->d_name[0] >= '0' && de->d_name[0] <= '9' && len > 4 &&
             strcmp(de->d_name + len - 4, ".sql") == 0;
    }
    closedir(d);
    return n;
}

static void test_migrate_embedded__are_the_files(void **state)
{
    const char *dir = pi_migrate_source_dir();
    char path[4096];

    (void)state;
    assert_int_equal(pi_migrations_embedded_count, migration_files(dir));
    for (size_t i = 0; i < pi_migrations_embedded_count; i++) {
        const pi_migration_src *m = &pi_migrations_embedded[i];
        char *text;

        if (i > 0)
            assert_true(strcmp(pi_migrations_embedded[i - 1].file, m->file) <
                        0);
        snprintf(path, sizeof(path), "%s/%s", dir, m->file);
        text = slurp(path);
        /* Quotes, backslashes and tabs are escaped by embed.sh: the text
         * must come back as it is in the file. */
        assert_string_equal(m->sql, text);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_embedded__are_the_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
