#define G_LOG_DOMAIN "DvCli"

#include <locale.h>

#include "dv-cli.h"

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    return dv_cli_main(argc, argv, stdout, stderr);
}
