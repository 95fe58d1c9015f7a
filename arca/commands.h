/* commands.h - one function per arca command, each in its own file. */
#ifndef ARCA_COMMANDS_H
#define ARCA_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_restore_imap(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_journal(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_alarm(int argc, char **argv);
int cmd_serve_imap(int argc, char **argv);
int cmd_overlay(int argc, char **argv);

#endif
