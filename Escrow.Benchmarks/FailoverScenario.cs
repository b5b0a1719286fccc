namespace Escrow.Benchmarks;

/// <summary>
/// Real-process failover: two silos, a steady load, kill -9 of the silo that does not host the sandboxes, then
/// convergence and the invariants of every escrow checked through the survivor's API, the Stripe sandbox and the
/// ledger.
/// </summary>
public sealed partial class FailoverScenario(FailoverOptions o)
{
    private static readonly string[] Terminal = ["released", "refunded", "payment_failed", "cancelled"];
    private readonly Transcript _transcript = new("failover");
    private readonly ConcurrentDictionary<string, int> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<(DateTime At, string What)> _errorTimes = [];
    private readonly List<string> _violations = [];

    private string RunId => _transcript.RunId;

    private void Say(string line = "") => _transcript.Say(line);

    private sealed class Track(int index, string key, string recipient, bool wantsReply)
    {
        public int Index { get; } = index;
        public string Key { get; } = key;
        public string Recipient { get; } = recipient;
        public bool WantsReply { get; } = wantsReply;
        public Guid? Id { get; set; }
        public DateTime? CreatedAt { get; set; }
        public DateTime? ReplyDeadline { get; set; }
        public DateTime? ReplyFirstAttempt { get; set; }
        public DateTime? ReplyAccepted { get; set; }
        public bool ReplyAmbiguous { get; set; }
        public string? ReplyFinal { get; set; }
        public List<string> Attempts { get; } = [];
    }

    /// <summary>What the kill phase saw: where escrows were active just before it, when it happened, when membership noticed.</summary>
    private sealed record KillSeen(DateTime KillAt, DateTime? SuspectedAt, DateTime? DeadAt, Dictionary<Guid, int> Placement, List<string> GrainCounts);

    /// <summary>The two processes and what the phases after the start need of them.</summary>
    private sealed record Processes(ApiProcess Api, SiloProcess Silo, string Connection, string ClusterId, string ServiceId, int[] Ports) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Silo.DisposeAsync();
            await Api.DisposeAsync();
        }
    }

    public async Task<int> RunAsync()
    {
        var repo = FindRepo();
        var work = _transcript.Work;
        _transcript.Begin("failover", o.CommandLine);
        Say($"Settings: {o.Escrows} escrows over {o.Seconds} s ({o.Escrows / (double)o.Seconds:F1}/s), window PT{o.Window}S + grace PT{FailoverOptions.GraceSeconds}S, "
            + $"half replied to; SIGKILL of process 2 at +{o.KillAfter} s; logs in {work}");
        if (!o.SkipBuild)
        {
            await ApiProcess.BuildAsync(repo);
        }

        await using var pg = await BenchPostgres.StartOrUseAsync(o.Connection);
        Say($"PostgreSQL: {pg.Describe}");
        var connection = await pg.CreateDatabaseAsync("escrow_failover_" + RunId);
        using var http = EscrowClient.CreateHttp();
        await using var cluster = await StartProcessesAsync(repo, work, connection, http);
        var client = new EscrowClient(http, cluster.Api.BaseUrl);
        var recipients = await SetUpRecipientsAsync(client);

        var tracks = Enumerable.Range(0, o.Escrows)
            .Select(i => new Track(i, $"{RunId}-f-{i}", recipients[i % recipients.Length], wantsReply: i % 2 == 0)).ToArray();
        var kill = await RunLoadWithKillAsync(client, cluster, tracks);
        var ids = tracks.Where(t => t.Id is not null).Select(t => t.Id!.Value).ToArray();
        var allTerminalSeen = await WaitTerminalAsync(connection, ids);
        var terminalAt = await FirstTerminalAtAsync(connection, ids);
        var fired = await RefundFiredAsync(connection, ids);

        var preKill = tracks.Where(t => t.Id is not null && t.CreatedAt < kill.KillAt).ToArray();
        var onProcess2 = ReportPlacement(kill, preKill, cluster.Ports[2]);
        ReportOutage(kill.KillAt, tracks, ids.Length);
        ReportConvergence(kill.KillAt, tracks, preKill, onProcess2, terminalAt, allTerminalSeen, ids.Length);
        ReportDeadlineRefunds(kill.KillAt, tracks, onProcess2, fired);

        Say();
        Say("== Invariants (every escrow: survivor's API, Stripe sandbox, ledger)");
        await CheckInvariantsAsync(connection, http, cluster.Api.BaseUrl, tracks);
        Say($"   violations: {_violations.Count}");
        foreach (var v in _violations.Take(30))
        {
            Say("   - " + v);
        }
        Say();
        await _transcript.SaveAsync();
        return _violations.Count == 0 ? 0 : 1;
    }

    /// <summary>Process 1 (the API with its silo and the sandboxes) and process 2 (a silo), until both are Active in membership.</summary>
    private async Task<Processes> StartProcessesAsync(string repo, string work, string connection, HttpClient http)
    {
        var clusterId = "failover-" + RunId;
        const string serviceId = "escrow-failover";
        var ports = Enumerable.Range(0, 4).Select(_ => BenchPostgres.FreePort()).ToArray();
        int[] windows = [o.Window];
        Dictionary<string, string> Cluster(int siloPort, int gatewayPort) => new()
        {
            ["Silo__Clustering"] = "AdoNet",
            ["Silo__ClusterId"] = clusterId,
            ["Silo__ServiceId"] = serviceId,
            ["Silo__AdvertisedAddress"] = "127.0.0.1",
            ["Silo__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Silo__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            // Both silos share process 1's sandboxes: one Postmark token, the sandbox's Stripe key.
            ["Postmark__ServerToken"] = "sandbox-postmark-failover",
            ["Logging__Console__TimestampFormat"] = "HH:mm:ss.fff ",
            ["Logging__Console__UseUtcTimestamp"] = "true",
            // Membership decisions in the logs (suspicions, death declarations).
            ["Logging__LogLevel__Orleans.Runtime.MembershipService"] = "Information",
        };

        var env1 = Cluster(ports[0], ports[1]);
        var api = await ApiProcess.StartAsync(repo, connection, windows, Path.Combine(work, "process1-api.log"), http, env1);
        Say($"Process 1: Escrow.Api pid {api.Pid} at {api.BaseUrl}, silo 127.0.0.1:{ports[0]}, gateway {ports[1]} (log {api.LogPath})");
        SiloProcess? silo = null;
        try
        {
            var env2 = ApiProcess.ServiceEnvironment(connection, windows);
            foreach (var (k, v) in Cluster(ports[2], ports[3]))
            {
                env2[k] = v;
            }
            env2["Stripe__SecretKey"] = "sk_test_sandbox";
            env2["Stripe__ApiBase"] = api.BaseUrl + "/_sandbox/stripe";
            env2["Postmark__ApiBase"] = api.BaseUrl + "/_sandbox/postmark";
            silo = await SiloProcess.StartAsync(repo, env2, Path.Combine(work, "process2-silo.log"), http);
            Say($"Process 2: Escrow.Silo pid {silo.Pid} at {silo.BaseUrl}, silo 127.0.0.1:{ports[2]}, gateway {ports[3]}; Stripe and Postmark → process 1's sandboxes (log {silo.LogPath})");

            var watch = Stopwatch.StartNew();
            while ((await MembershipAsync(connection, clusterId)).Count(m => m.Status == 3) < 2)
            {
                if (watch.Elapsed > TimeSpan.FromMinutes(2) || silo.HasExited)
                {
                    throw new InvalidOperationException("The two silos did not both become Active in membership within 2 minutes.");
                }
                await Task.Delay(200);
            }
            var members = await MembershipAsync(connection, clusterId);
            Say($"Membership: {string.Join(", ", members.Select(m => $"{m.Address}:{m.Port} {StatusName(m.Status)}"))} ({watch.Elapsed.TotalSeconds:F1} s after process 2 answered)");
        }
        catch
        {
            if (silo is not null)
            {
                await silo.DisposeAsync();
            }
            await api.DisposeAsync();
            throw;
        }
        return new Processes(api, silo, connection, clusterId, serviceId, ports);
    }

    private async Task<string[]> SetUpRecipientsAsync(EscrowClient client)
    {
        var recipients = Enumerable.Range(0, Math.Max(8, o.Escrows / 100)).Select(i => $"rf{RunId}-{i}").ToArray();
        var watch = Stopwatch.StartNew();
        await Parallel.ForEachAsync(recipients, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (id, _) =>
        {
            await client.PutRecipientAsync(id, 1000);
            await client.EnablePayoutsAsync(id);
        });
        Say($"Recipients: {recipients.Length}, payouts enabled through the sandbox, in {watch.Elapsed.TotalSeconds:F1} s");
        return recipients;
    }

    /// <summary>Starts every lifecycle at the configured rate and, meanwhile, kills process 2 and watches membership notice it.</summary>
    private async Task<KillSeen> RunLoadWithKillAsync(EscrowClient client, Processes cluster, Track[] tracks)
    {
        var (connection, clusterId, serviceId, ports, silo) = (cluster.Connection, cluster.ClusterId, cluster.ServiceId, cluster.Ports, cluster.Silo);
        var rate = o.Escrows / (double)o.Seconds;
        var loadStart = DateTime.UtcNow;
        var killAt = DateTime.MaxValue;
        var placement = new Dictionary<Guid, int>();
        var grainCounts = new List<string>();
        var lifecycles = new List<Task>(o.Escrows);
        DateTime? deadAt = null;
        DateTime? suspectedAt = null;
        var killTask = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(o.KillAfter));
            (placement, grainCounts) = await PlacementAsync(connection, clusterId, serviceId, ports[2]);
            killAt = DateTime.UtcNow;
            silo.Kill();
            Say($"SIGKILL of process 2 (pid {silo.Pid}) at +{(killAt - loadStart).TotalSeconds:F1} s ({killAt:HH:mm:ss.fff} UTC)");
            // Membership, polled every 0.1 s: the survivor's first suspicion, then the death declaration.
            while (DateTime.UtcNow < killAt.AddMinutes(5))
            {
                var row = (await MembershipAsync(connection, clusterId)).FirstOrDefault(m => m.Port == ports[2]);
                if (suspectedAt is null && row.Suspected)
                {
                    suspectedAt = DateTime.UtcNow;
                }
                if (row.Status == 6)
                {
                    deadAt = DateTime.UtcNow;
                    return;
                }
                await Task.Delay(100);
            }
        });
        var loadWatch = Stopwatch.StartNew();
        for (var i = 0; i < tracks.Length; i++)
        {
            var wait = TimeSpan.FromSeconds(i / rate) - loadWatch.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }
            var t = tracks[i];
            lifecycles.Add(Task.Run(() => LifecycleAsync(client, t)));
            if (i % Math.Max(1, (int)(rate * 15)) == 0 && i > 0)
            {
                Console.WriteLine($"   ... +{loadWatch.Elapsed.TotalSeconds:F0} s: {i} escrows started, {tracks.Count(x => x.Id is not null)} created, errors {_errors.Values.Sum()}");
            }
        }
        Say($"Load: {tracks.Length} escrows started in {loadWatch.Elapsed.TotalSeconds:F1} s; waiting for the lifecycles (replies run until their deadlines)");

        await Task.WhenAll(lifecycles);
        await killTask;
        Say(deadAt is { } d
            ? $"Membership: process 2 suspected (suspect_times set) {(suspectedAt is { } su ? $"{(su - killAt).TotalSeconds:F1} s" : "never seen")}, declared Dead {(d - killAt).TotalSeconds:F1} s after the SIGKILL (table polled every 0.1 s)"
            : "Membership: process 2 NOT declared dead within 5 minutes");
        if (deadAt is null)
        {
            _violations.Add("process 2 never declared dead in membership");
        }
        return new KillSeen(killAt, suspectedAt, deadAt, placement, grainCounts);
    }

    /// <summary>Waits until every created escrow is terminal (a violation after 5 minutes); answers when that was seen.</summary>
    private async Task<DateTime> WaitTerminalAsync(string connection, Guid[] ids)
    {
        var watch = Stopwatch.StartNew();
        var lastPending = -1;
        while (true)
        {
            var pending = await NonTerminalAsync(connection, ids);
            if (pending == 0)
            {
                break;
            }
            if (pending != lastPending)
            {
                Console.WriteLine($"   ... {pending} escrows not yet terminal");
                lastPending = pending;
            }
            if (watch.Elapsed > TimeSpan.FromMinutes(5))
            {
                _violations.Add($"{pending} escrows not terminal 5 minutes after the load's lifecycles ended");
                break;
            }
            await Task.Delay(500);
        }
        return DateTime.UtcNow;
    }
}
