import os

os.environ.setdefault("OMP_NUM_THREADS", "1")


def assert_cli_errors(capsys, cases) -> None:
    """Each ``(args, message)``: exit status 2, one readable line containing ``message``, no traceback."""
    from hrlbc.cli import main

    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
