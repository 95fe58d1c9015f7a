/* cmd_serve_imap.c: being written (placeholder until its helper lands it). */
#include <stdio.h>
#include "commands.h"
int cmd_serve_imap(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("arca serve-imap: not built yet\n", stderr);
	return 1;
}
