using System.Text.RegularExpressions;

namespace Escrow.Benchmarks;

/// <summary>
/// One benchmark run: the PostgreSQL ceiling, then released, paced, one-client and refunded lifecycles against one API
/// process, then the open-escrow scenario; prints the figures and the targets and appends a row to docs/BENCHMARKS.md.
/// Each phase is in its own file (BenchmarkRun.*.cs).
/// </summary>
public sealed partial class BenchmarkRun(BenchOptions o)
{
    private const string WindowA = "PT30S";
    private readonly Transcript _transcript = new("bench");
    private readonly SortedDictionary<string, string> _figures = new(StringComparer.Ordinal);
    private readonly List<string> _targets = [];

    private string RunId => _transcript.RunId;

    private void Say(string line = "") => _transcript.Say(line);

    private void Figure(string key, string value) => _figures[key] = value;

    private void Target(string name, bool met, string detail)
    {
        var line = $"{(met ? "MET    " : "MISSED ")} {name}: {detail}";
        _targets.Add(line);
    }

    public async Task RunAsync()
    {
        var repo = FindRepo();
        var work = _transcript.Work;
        _transcript.Begin("benchmark", o.CommandLine);
        Say($"Settings: lifecycles {o.Lifecycles}, concurrency {o.Concurrency}, refunds {o.RefundLifecycles}, open {o.Open}; logs in {work}");

        if (!o.SkipBuild)
        {
            await ApiProcess.BuildAsync(repo);
        }

        await using var pg = await BenchPostgres.StartOrUseAsync(o.Connection);
        Say($"PostgreSQL: {pg.Describe}");
        var statements = await pg.TryEnableStatementsAsync();
        Say(statements ? "pg_stat_statements: available (track=top)" : "pg_stat_statements: not available (per-statement counts skipped)");

        var ceiling = await MeasureCeilingAsync(pg, work);

        var dbName = "escrow_bench_" + RunId;
        var escrowConnection = await pg.CreateDatabaseAsync(dbName);
        var serviceConnection = string.IsNullOrWhiteSpace(o.ServiceConnectionOptions) ? escrowConnection : escrowConnection.TrimEnd(';') + ";" + o.ServiceConnectionOptions;
        var db = new Database(new DbStats(await pg.StatsConnectionStringAsync(), new NpgsqlConnectionStringBuilder(escrowConnection).Database!), escrowConnection, statements);
        using var http = EscrowClient.CreateHttp();

        LifecycleCost released;
        var refunded = LifecycleCost.NotRun;
        var apiPort = BenchPostgres.FreePort();
        await using var emulators = o.SeparateEmulators
            ? await EmulatorProcess.StartAsync($"http://127.0.0.1:{apiPort}/webhooks/stripe", ApiProcess.WebhookSecret, Path.Combine(work, "emulators.log"), http)
            : null;
        await using (var api = await ApiProcess.StartAsync(repo, serviceConnection, [30], Path.Combine(work, "api-lifecycles.log"), http, emulators?.ServiceEnvironment(), apiPort))
        {
            var client = new EscrowClient(http, api.BaseUrl, emulators?.BaseUrl);
            Say($"Escrow.Api pid {api.Pid} at {api.BaseUrl} (log {api.LogPath}); " + (emulators is null ? "Stripe and Postmark emulators inside it" : $"Stripe and Postmark {emulators}"));
            var recipients = await SetupRecipientsAsync(client, "ra" + RunId, o.Lifecycles * 2 + o.RefundLifecycles + 5000 + o.WarmupSeconds * 200 + o.OneClientSeconds * 100, payouts: true);
            var meter = () => new CpuMeter(api.Pid, pg.PostmasterPid, emulators?.Pid).Start();
            await WarmUpAsync(client, recipients);
            released = await MeasureReleasedAsync(client, recipients, db, meter);
            await MeasurePacedAsync(client, recipients, released.Run!.PerSecond);
            await MeasureOneClientAsync(client, recipients, meter);
            if (o.RefundLifecycles > 0)
            {
                refunded = await MeasureRefundedAsync(client, recipients, db);
            }
            else
            {
                Say();
                Say("== Refunded lifecycles: not run (--refunds 0)");
            }
        }
        if (emulators is not null)
        {
            // The open-escrow scenario runs its API with the emulators inside: these would only add idle CPU.
            await emulators.DisposeAsync();
        }

        var ratio = ReportCeiling(released, ceiling);
        // Many open escrows: memory, idle CPU, and how late refunds fire.
        var open = o.Open > 0 ? await RunOpenScenarioAsync(repo, escrowConnection, serviceConnection, pg, http, work, released.Run.PerSecond) : null;
        ReportTargets(released.Commits, ratio, open);
        Say();
        await _transcript.SaveAsync();
        if (o.Append)
        {
            await AppendRowAsync(repo, released.Run, released.Commits, refunded.Commits, released.Writes, refunded.Writes, ceiling, ratio, released.Cpu!, open);
        }
    }

    private double _pacedP99 = double.NaN;
    private double _oneClientP99 = double.NaN;
    private string _pacedSlowest = "";
    private readonly string _loadAtStart = ProcStat.LoadAverage();
    private double _singleClientTps = double.NaN;
    private string _singleClientLatency = "n/a";

    private static string FindRepo() => ChildProcess.RepositoryRoot();
}
