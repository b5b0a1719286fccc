namespace Escrow.Benchmarks;

public sealed partial class BenchmarkRun
{
    /// <summary>The released lifecycles against the pgbench ceiling; returns the share of the ceiling they use.</summary>
    private double ReportCeiling(LifecycleCost released, double ceiling)
    {
        var release = released.Run!;
        var ratio = release.PerSecond * released.Commits / ceiling;
        Figure("a_lifecycles_per_s", $"{release.PerSecond:F0}");
        Figure("a_commits", $"{released.Commits:F1}");
        Figure("c_ceiling", $"{ceiling:F0}");
        Figure("d_ratio", $"{100 * ratio:F0} %");
        Say();
        Say($"== Against the ceiling: {release.PerSecond:F1} lifecycles/s × {released.Commits:F2} commits = {release.PerSecond * released.Commits:F0} commits/s = {100 * ratio:F1} % of {ceiling:F0} (pgbench)");
        Say($"   counting writing commits only: {release.PerSecond:F1} × {released.Writes:F2} = {release.PerSecond * released.Writes:F0} commits/s = {100 * release.PerSecond * released.Writes / ceiling:F1} % of the ceiling");
        return ratio;
    }

    private void ReportTargets(double commitsPerRelease, double ratio, OpenFigures? open)
    {
    Target("≤ 6 durable commits per released lifecycle", commitsPerRelease <= 6, $"{commitsPerRelease:F2}");
    Target("throughput × commits ≥ 50 % of the pgbench ceiling", ratio >= 0.5, $"{100 * ratio:F1} %");
    Target("p99 POST /v1/escrows ≤ 10 ms at half the max throughput", _pacedP99 <= 10, double.IsNaN(_pacedP99) ? "not measured (--paced-seconds 0)"
        : $"{_pacedP99:F1} ms" + (double.IsNaN(_oneClientP99) ? "" : $" (one client alone: {_oneClientP99:F1} ms)"));
    if (open is not null)
    {
        Target($"refunds fire ≤ 5 s (p99) after deadline + grace with {o.Open} open escrows", open.Value.LateP99 <= 5, $"fired p99 {open.Value.LateP99:F2} s (money movement completed: refunded p99 {open.Value.Late.RefundedP99:F1} s)" + (o.Open < 100_000 ? " (fewer than the 100 000 of the target)" : ""));
        // What the escrows cost is the API's idle CPU over its own with no escrows (the dashboard's metric
        // collection, timers, the thread pool cost that much with none), at the worse of the two moments.
        var idle = open.Value;
        Target("open escrows cost ≤ 5 % CPU idle", idle.IdleCostPercent <= 5, double.IsNaN(idle.IdleCpuPercent) ? "not measured (no quiet interval)"
            : $"{idle.JustCreatedCostPercent:+0.00;-0.00} % of one core just after creation"
            + (double.IsNaN(idle.SettledCpuPercent) ? "" : $", {idle.SettledCostPercent:+0.00;-0.00} % once idle activations were collected")
            + $" (the API: {idle.BaselineCpuPercent:F2} % with no escrows, {idle.IdleCpuPercent:F2} %"
            + (double.IsNaN(idle.SettledCpuPercent) ? "" : $" and {idle.SettledCpuPercent:F2} %") + " with them)"
            + (o.Open < 100_000 ? $" with {o.Open} open" : ""));
    }
    Say();
    Say("== Targets");
    foreach (var t in _targets)
    {
        Say("   " + t);
    }
    }

    /// <summary>A phase's grain-state writes and, where pg_stat_statements is available, its statements, per lifecycle.</summary>
    private async Task ReportWritesAndStatementsAsync(Database db, PhaseCost cost, string what)
    {
        Say($"   grain state writes    {cost.GrainWritesPer} per lifecycle (orleans_grain_state version delta)");
        if (!db.Statements)
        {
            return;
        }
        var list = await db.Stats.StatementsAsync();
        var lifecycles = cost.Lifecycles;
        var total = list.Sum(s => s.Calls);
        var reads = list.Where(s => DbStats.IsRead(s.Query)).Sum(s => s.Calls);
        Say($"   statements per {what} (pg_stat_statements, top-level; each is its own transaction unless inside BEGIN … COMMIT):");
        Say($"   {total / (double)lifecycles,8:F2} total, of which {reads / (double)lifecycles:F2} read-only (a commit in xact_commit but no WAL flush)");
        foreach (var s in list.Where(s => s.Calls / (double)lifecycles >= 0.01).Take(25))
        {
            Say($"   {s.Calls / (double)lifecycles,8:F2}  {s.Milliseconds / Math.Max(1, s.Calls),6:F2} ms  {DbStats.Shorten(s.Query)}");
        }
    }

    private async Task AppendRowAsync(string repo, ReleaseRun release, double commitsPerRelease, double commitsPerRefund, double writesPerRelease, double writesPerRefund, double ceiling, double ratio, CpuSample cpu, OpenFigures? open)
    {
        var commit = new StringWriter();
        await Silo.ProcessRunner.RunAsync("git", ["-C", repo, "rev-parse", "--short", "HEAD"], false, "git rev-parse", throwOnFailure: false, output: commit);
        var dirty = new StringWriter();
        await Silo.ProcessRunner.RunAsync("git", ["-C", repo, "status", "--porcelain", "--untracked-files=no"], false, "git status", throwOnFailure: false, output: dirty);
        var machine = $"{Environment.ProcessorCount} cores, {ProcStat.MemTotalGiB():F0} GiB, {ProcStat.CpuModel()}";
        var o2 = open;
        var row = string.Join(" | ",
            DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            machine,
            commit.ToString().Trim() + (dirty.ToString().Trim().Length > 0 ? "+dirty" : ""),
            "`" + o.CommandLine + "`",
            $"{release.Count} × {o.Concurrency}: {release.PerSecond:F0}/s",
            $"{commitsPerRelease:F1} / {commitsPerRefund:F1} (writing {writesPerRelease:F1} / {writesPerRefund:F1})",
            $"{ceiling:F0} (1 client: {_singleClientTps:F0}, {_singleClientLatency} ms)",
            $"{100 * ratio:F0} %",
            $"{Percentiles.Of(release.CreateMs, 50):F1}/{Percentiles.Of(release.CreateMs, 99):F1} · {_figures.GetValueOrDefault("e_post_p50_half", "n/a")}/{_figures.GetValueOrDefault("e_post_p99_half", "n/a")}",
            $"{Percentiles.Of(release.ReplyToReleasedMs, 50):F1}/{Percentiles.Of(release.ReplyToReleasedMs, 99):F1} ms (reply call)",
            $"API {cpu.ApiPercent:F0} % · PG {cpu.PostgresPercent:F0} % · gen {cpu.LoadGeneratorPercent:F0} % · others {cpu.OtherPercent:F0} % (load avg {_loadAtStart})",
            o2 is { } x ? $"{x.Open}: {x.BytesPerEscrow / 1024:F1} KiB" : "n/a",
            o2 is { } y ? $"{y.Late.P50:F2}/{y.Late.P99:F2}/{y.Late.Max:F2} s; refunded p99 {y.Late.RefundedP99:F1} s" : "n/a",
            o2 is { } z ? (double.IsNaN(z.IdleCpuPercent) ? "n/a" : $"{z.IdleCpuPercent:F2} % ({z.IdleSeconds:F0} s, {ShowCount(z.IdleActivations)} activations)"
                + (double.IsNaN(z.SettledCpuPercent) ? "" : $"; settled {z.SettledCpuPercent:F2} % ({ShowCount(z.SettledActivations)} activations)")
                + $"; no escrows {z.BaselineCpuPercent:F2} %: cost {z.IdleCostPercent:+0.00;-0.00} %") : "n/a");
        var path = Path.Combine(repo, "docs", "BENCHMARKS.md");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
        {
            await File.WriteAllTextAsync(path, "# Benchmarks\n\n## Runs\n\n" + RunsHeader);
        }
        var text = await File.ReadAllTextAsync(path);
        await File.AppendAllTextAsync(path, (text.EndsWith('\n') ? "" : "\n") + "| " + row + " |\n");
        Say($"Appended the row to {path}");
    }

    public const string RunsHeader = """
        | date | machine | commit | command | released lifecycles: n × clients: rate | commits per released / refunded lifecycle | pgbench ceiling (commits/s) | (rate × commits) ÷ ceiling | POST /v1/escrows p50/p99 ms: at max · at half | reply → released p50/p99 | CPU at max (100 % = one core) | open escrows: RSS per escrow | refund fired after deadline+grace p50/p99/max; completed p99 | idle CPU of the API with the open escrows |
        |---|---|---|---|---|---|---|---|---|---|---|---|---|---|

        """;
}
