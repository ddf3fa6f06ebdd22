"""`audiofx process`: one file (`-o OUT`), or many (`--out-dir DIR`), or a pipe (`-`)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from audiofx_cli.chain.inline import chain_name, is_feature_chain
from audiofx_cli.cli.chain_options import (
    BitsOption,
    ChainOption,
    ChannelsOption,
    DumpChainOption,
    RateOption,
    StageOption,
    bits_subtype,
    chain_from_options,
    dump_chain,
)
from audiofx_cli.cli.common import (
    DEBUG_HELP,
    ChunkSecondsOption,
    DeviceOption,
    DitherOption,
    FuseOption,
    NoServer,
    PrecisionOption,
    SanitizeOption,
    SubtypeOption,
    check_processing,
    exit_on_error,
    processing_kwargs,
    warn,
)
from audiofx_cli.errors import EXIT_FAILED, UsageError
from audiofx_cli.io.urls import URLPath, check_writable, is_url, location

HELP = """Process audio through a chain: one file with -o, many with --out-dir.

[bold]Examples[/bold]

  audiofx process speech.wav --chain vocal -o speech_vocal.wav

  audiofx process in.wav -e highpass:cutoff_hz=80 -e 'gain gain_db=-3' -o out.wav

  audiofx process in.wav -o out.flac                      (no chain: a format conversion)

  audiofx process raw/ --out-dir ml/ -r 16k -C 1 -b 16 --name '{stem}.flac'

  audiofx process in.wav -c vocal -e normalize:mode=lufs,target_db=-16 -o out.wav

  audiofx process in.wav -e highpass:cutoff_hz=80 -o out.wav --dump-chain hp.yaml

  audiofx process in.flac --chain my_chain.yaml -o out.flac --device auto --chunk-seconds 5

  audiofx process recordings/ --chain podcast --out-dir cleaned/ --recursive --jobs 2

  audiofx process 'takes/*.flac' --chain vocal --out-dir out/ --name '{stem}_fx.{ext}'

  audiofx process recordings/ --chain podcast --out-dir cleaned/ --skip-existing --shard 3/16

  audiofx process corpus/ -R --chain modulation-frames --out-shards feats/shard-%06d.tar

  sox in.wav -t wav - | audiofx process - --chain rumble -o - -t wav | sox - -n stats

Folders and quoted globs take the files libsndfile can open; --out-dir mirrors their
sub-folders. The chain runs in this order: --chain, the -e stages, then -C (channels) and
-r (resample); -b sets the output's bits. Exit codes: 0 success, 1 a file failed, 2 usage or
chain-spec error (nothing written), 130 interrupted.
"""


def _single(
    input: str,
    output: str,
    chain: Any,
    kwargs: dict[str, Any],
    file_type: str | None,
    quiet: bool,
    json_path: str | None,
) -> None:
    from audiofx_cli.batch.report import BatchSummary, write_json_report
    from audiofx_cli.batch.runner import FileResult

    summary = BatchSummary(1)
    write_report = json_path is not None
    try:
        report = _process_single(input, output, chain, kwargs, file_type)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    except Exception as exc:  # the report says why, as a batch's does (usage errors: none)
        if getattr(exc, "exit_code", EXIT_FAILED) == EXIT_FAILED:
            summary.results.append(FileResult(input, output, "failed", error=str(exc)))
        else:
            write_report = False
        raise
    else:
        summary.results.append(
            FileResult(
                input,
                output,
                "ok",
                report.duration_s,
                report.seconds,
                report.peak_dbfs,
                report.clipped_samples,
                report.sanitized_samples,
            )
        )
    finally:
        if write_report:
            write_json_report(Path(str(json_path)), summary, chain)
    shown = "-" if output == "-" else report.output
    if report.sanitized_samples:
        warn(f"{input}: replaced {report.sanitized_samples} NaN/Inf samples (--sanitize)")
    if report.clipped_samples:
        total = max(report.output_frames * report.output_channels, 1)
        warn(
            f"{shown}: clipped {report.clipped_samples} samples "
            f"({100 * report.clipped_samples / total:.3g} %); lower the gain or write "
            "--subtype FLOAT"
        )
    if not quiet:
        if report.format in ("npz", "pt"):  # feature arrays: no peak or clipping to speak of
            what = (
                f"features at {report.output_rate:.6g} frames/s, {report.format} {report.subtype}"
            )
        else:
            what = (
                f"{report.output_rate:g} Hz, {report.output_channels} ch, {report.format} "
                f"{report.subtype}, peak {report.peak_dbfs:.1f} dBFS"
            )
        typer.echo(
            f"wrote {shown}: {report.duration_s:.2f} s, {what} ({report.seconds:.2f} s, "
            f"{report.realtime_factor:.0f}x real time on {report.device})",
            err=True,
        )


def _process_single(
    input: str, output: str, chain: Any, kwargs: dict[str, Any], file_type: str | None
) -> Any:
    """One file, or a pipe: stdin spooled to a temporary file, stdout written once complete."""
    from audiofx_cli.api import process_file  # imports torch
    from audiofx_cli.io.pipes import spooled_stdin, stdout_target

    with ExitStack() as stack:
        source = stack.enter_context(spooled_stdin()) if input == "-" else input
        if output == "-":
            if not file_type:
                raise UsageError("writing to stdout needs -t TYPE (wav, flac, ...)")
            target = stack.enter_context(stdout_target(file_type))
            kwargs = {**kwargs, "overwrite": True}
        else:
            if file_type and Path(output).suffix.lower() != f".{file_type.lower()}":
                raise UsageError(f"-t {file_type} does not match the output name {output}")
            target = output
        return process_file(source, target, chain, **kwargs)


def _batch(
    inputs: list[str],
    out_dir: str,
    chain: Any,
    kwargs: dict[str, Any],
    *,
    name: str,
    recursive: bool,
    jobs: int,
    skip_existing: bool,
    shard: str | None,
    executor: str,
    json_path: str | None,
    quiet: bool,
) -> int:
    from audiofx_cli.batch.inputs import discover, parse_shard, select_shard
    from audiofx_cli.batch.plan import plan
    from audiofx_cli.batch.runner import BatchOptions, run_batch

    if "-" in inputs:
        raise UsageError("'-' (stdin) needs -o OUT, not --out-dir")
    items = discover(inputs, recursive)
    if shard:
        items = select_shard(items, *parse_shard(shard))
    features = is_feature_chain(chain)
    out_loc = location(out_dir)
    tasks = plan(items, out_loc, name, chain_name(chain), "npz" if features else None)
    from audiofx_cli.io.sinks import check_output  # imports torch

    for task in tasks:  # every output name must be writable before anything runs
        out = task.output if isinstance(task.output, Path) else Path(task.output.name)
        check_output(out, kwargs.get("subtype"), kwargs["dither"])
    if isinstance(out_loc, URLPath):
        check_writable(out_loc)
    else:
        try:
            out_loc.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"{out_dir}: cannot create output folder: {exc.strerror or exc}"
            ) from None
    options = BatchOptions(process_kwargs=kwargs, skip_existing=skip_existing)
    return _run_tasks(
        tasks,
        chain,
        json_path,
        quiet,
        lambda on_result: run_batch(
            tasks, chain, options, jobs=jobs, executor=executor, on_result=on_result
        ),
    )


def _run_tasks(
    tasks: list[Any],
    chain: Any,
    json_path: str | None,
    quiet: bool,
    run: Any,
    report_extra: Any = None,
) -> int:
    """Run a batch's tasks with a progress bar, write the JSON report (also when
    interrupted) and print the summary; the exit code. `run(on_result)` runs the tasks;
    `report_extra()` gives extra sections for the report."""
    from audiofx_cli.batch.inputs import duration_s
    from audiofx_cli.batch.report import BatchSummary, write_json_report
    from audiofx_cli.cli.batch_view import BatchProgress, print_summary

    durations = {  # for the progress bar; objects in a store count once processed
        str(task.input): 0.0 if isinstance(task.input, URLPath) else duration_s(task.input)
        for task in tasks
    }
    summary = BatchSummary(len(tasks))
    try:
        with BatchProgress(len(tasks), sum(durations.values()), quiet) as progress:

            def on_result(result: Any) -> None:
                summary.results.append(result)
                progress.advance(result, durations.get(result.input) or result.duration_s)

            run(on_result)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        if json_path:
            extra = report_extra() if report_extra is not None else None
            write_json_report(Path(json_path), summary, chain, extra)
    print_summary(summary, quiet)
    return EXIT_FAILED if summary.count("failed") else 0


def _shards(
    inputs: list[str],
    pattern: str,
    chain: Any,
    kwargs: dict[str, Any],
    *,
    shard_size: str,
    recursive: bool,
    jobs: int,
    shard: str | None,
    executor: str,
    json_path: str | None,
    quiet: bool,
) -> int:
    """`--out-shards`: every input one sample in WebDataset-style tar shards."""
    from audiofx_cli.batch.inputs import discover, parse_shard, select_shard
    from audiofx_cli.batch.runner import BatchOptions
    from audiofx_cli.batch.shards import plan_shards, run_shards, shard_index
    from audiofx_cli.io.shards import ShardWriter, check_pattern, existing_shards, parse_size

    if "-" in inputs:
        raise UsageError("'-' (stdin) needs -o OUT, not --out-shards")
    check_pattern(pattern)
    max_bytes = parse_size(shard_size)
    items = discover(inputs, recursive)
    k, n = parse_shard(shard) if shard else (1, 1)
    items = select_shard(items, k, n) if shard else items
    features = is_feature_chain(chain)
    ext = "npz" if features else "flac"
    tasks = plan_shards(items, ext)
    from audiofx_cli.io.sinks import check_output  # imports torch

    check_output(Path(f"sample.{ext}"), kwargs.get("subtype"), kwargs["dither"])
    taken = existing_shards(pattern)
    if taken and not kwargs["overwrite"]:
        raise UsageError(f"{taken[0]}: shard exists (use --overwrite to replace shards)")
    writer = ShardWriter(pattern, max_bytes, kwargs["overwrite"], first=k - 1, step=n)
    options = BatchOptions(process_kwargs={**kwargs, "overwrite": False})
    return _run_tasks(
        tasks,
        chain,
        json_path,
        quiet,
        lambda on_result: run_shards(
            tasks, chain, options, writer, jobs=jobs, executor=executor, on_result=on_result
        ),
        lambda: shard_index(writer),
    )


def process(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="audio files, folders, quoted globs, or - for stdin", show_default=False
        ),
    ],
    chain: ChainOption = None,
    stage: StageOption = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="output file for one input (- for stdout)")
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--out-dir", help="output folder for many inputs (mirrors sub-folders)"),
    ] = None,
    name: Annotated[
        str, typer.Option(help="output name template: {stem} {ext} {chain} {parent}")
    ] = "{stem}.{ext}",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="scan folders and ** globs recursively")
    ] = False,
    rate: RateOption = None,
    channels: ChannelsOption = None,
    bits: BitsOption = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="files processed in parallel")] = 1,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="leave existing outputs alone (resume a batch)")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace existing outputs")
    ] = False,
    shard: Annotated[
        str | None, typer.Option(help="K/N: process only shard K of N (stable split by path hash)")
    ] = None,
    executor: Annotated[str, typer.Option(help="local | ray (cluster from RAY_ADDRESS)")] = "local",
    out_shards: Annotated[
        str | None,
        typer.Option(
            "--out-shards",
            help="write WebDataset-style tar shards instead of files: a name with one integer "
            "field, e.g. feats/shard-%06d.tar (KEY.npz or KEY.flac plus KEY.json per input)",
        ),
    ] = None,
    shard_size: Annotated[
        str, typer.Option("--shard-size", help="largest shard: 1GB, 500MB, 256MiB, bytes")
    ] = "1GB",
    json_path: Annotated[
        str | None,
        typer.Option(
            "--json", help="write a JSON report (per-file status, peak, clipping, errors)"
        ),
    ] = None,
    file_type: Annotated[
        str | None,
        typer.Option(
            "--type", "-t", help="output format where there is no extension (wav, flac, ...)"
        ),
    ] = None,
    sanitize: SanitizeOption = False,
    dither: DitherOption = "tpdf",
    fuse: FuseOption = True,
    device: DeviceOption = "auto",
    chunk_seconds: ChunkSecondsOption = 10.0,
    precision: PrecisionOption = "float32",
    subtype: SubtypeOption = None,
    dump_chain_to: DumpChainOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print errors only")] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
    no_server: NoServer = False,
) -> None:
    with exit_on_error(debug):
        check_processing(device, precision, chunk_seconds)
        if jobs < 1:
            raise UsageError(f"--jobs must be >= 1, got {jobs}")
        if overwrite and skip_existing:
            raise UsageError("--overwrite and --skip-existing exclude each other")
        spec = chain_from_options(chain, stage, rate, channels)
        if dump_chain_to is not None:
            if dump_chain_to == "-" and output == "-":
                raise UsageError("--dump-chain - and -o - would both write to stdout")
            dump_chain(spec, dump_chain_to, overwrite)
        kwargs = processing_kwargs(
            device=device,
            precision=precision,
            chunk_seconds=chunk_seconds,
            subtype=bits_subtype(bits, subtype),
            overwrite=overwrite,
            sanitize=sanitize,
            dither=dither,
            fuse=fuse,
        )
        if output is not None:
            if out_dir is not None:
                raise UsageError("give -o OUT (one file) or --out-dir DIR (many), not both")
            single = inputs[0] if len(inputs) == 1 else "-"
            if len(inputs) != 1 or (not is_url(single) and single != "-" and Path(single).is_dir()):
                raise UsageError(
                    "-o names one output file; use --out-dir for folders and several inputs"
                )
            _single(inputs[0], output, spec, kwargs, file_type, quiet, json_path)
            return
        if out_shards is not None:
            if out_dir is not None:
                raise UsageError("give --out-dir DIR (files) or --out-shards PATTERN, not both")
            if skip_existing:
                raise UsageError(
                    "--skip-existing does not apply to --out-shards (shards are whole)"
                )
            code = _shards(
                inputs,
                out_shards,
                spec,
                kwargs,
                shard_size=shard_size,
                recursive=recursive,
                jobs=jobs,
                shard=shard,
                executor=executor,
                json_path=json_path,
                quiet=quiet,
            )
            if code:
                raise typer.Exit(code)
            return
        if out_dir is None:
            raise UsageError(
                "give an output: -o OUT for one file, --out-dir DIR or --out-shards PATTERN "
                "for many"
            )
        code = _batch(
            inputs,
            out_dir,
            spec,
            kwargs,
            name=name,
            recursive=recursive,
            jobs=jobs,
            skip_existing=skip_existing,
            shard=shard,
            executor=executor,
            json_path=json_path,
            quiet=quiet,
        )
        if code:
            raise typer.Exit(code)


process.__doc__ = HELP
