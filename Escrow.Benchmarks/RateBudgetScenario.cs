namespace Escrow.Benchmarks;

/// <summary>
/// <c>rate-budget</c>: a burst of deadlines under Stripe:MaxRequestsPerSecond against a sandbox that answers 429 past its
/// own limit (Sandbox:Stripe:RateLimitPerSecond), as Stripe does. N escrows are created (paced by the budget), the API
/// is then paused (SIGSTOP) across their deadlines, as during an outage, so that every refund falls due at once when it
/// resumes (SIGCONT). Prints the time each phase took beside the budget's prediction (requests / budget), and the
/// sandbox's counts: every escrow refunded, no 429.
/// </summary>
public static class RateBudgetScenario
{
    public const string Usage = """
        usage: rate-budget [--escrows N] [--budget R] [--sandbox-limit L] [--skip-build] [--connection CS]
          --escrows N        deadlines in the burst (default 200)
          --budget R         Stripe:MaxRequestsPerSecond of the service (default 10)
          --sandbox-limit L  Sandbox:Stripe:RateLimitPerSecond (default 12)
          --skip-build       use the Release build already there
          --connection CS    a PostgreSQL server to use (default: a private cluster)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        int escrows = 200, budget = 10, limit = 12;
        var skipBuild = false;
        string? connection = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--escrows" when i + 1 < args.Length && int.TryParse(args[++i], CultureInfo.InvariantCulture, out var n) && n > 0:
                    escrows = n;
                    break;
                case "--budget" when i + 1 < args.Length && int.TryParse(args[++i], CultureInfo.InvariantCulture, out var r) && r > 0:
                    budget = r;
                    break;
                case "--sandbox-limit" when i + 1 < args.Length && int.TryParse(args[++i], CultureInfo.InvariantCulture, out var l) && l >= 0:
                    limit = l;
                    break;
                case "--skip-build":
                    skipBuild = true;
                    break;
                case "--connection" when i + 1 < args.Length:
                    connection = args[++i];
                    break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    Console.Error.WriteLine($"Unknown or invalid option '{args[i]}'.");
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        var repo = ChildProcess.RepositoryRoot();
        if (!skipBuild)
        {
            await ApiProcess.BuildAsync(repo);
        }
        await using var postgres = await BenchPostgres.StartOrUseAsync(connection);
        var connectionString = await postgres.CreateDatabaseAsync("rate_budget_" + DateTime.UtcNow.ToString("HHmmss", CultureInfo.InvariantCulture));
        using var http = EscrowClient.CreateHttp();
        // The window leaves the creation phase (escrows / budget seconds) time to finish before the first deadline.
        var window = (int)Math.Ceiling(escrows / (double)budget) + 30;
        var logPath = Path.Combine(Path.GetTempPath(), $"escrow-rate-budget-{Environment.ProcessId}.log");
        await using var api = await ApiProcess.StartAsync(repo, connectionString, [window], logPath, http, new Dictionary<string, string>
        {
            ["Stripe__MaxRequestsPerSecond"] = budget.ToString(CultureInfo.InvariantCulture),
            ["Sandbox__Stripe__RateLimitPerSecond"] = limit.ToString(CultureInfo.InvariantCulture),
        });
        var client = new EscrowClient(http, api.BaseUrl);
        var recipient = "rate-budget-" + Guid.NewGuid().ToString("N")[..8];
        await client.PutRecipientAsync(recipient, dailyLimit: 1_000);

        var before = await StatsAsync(http, api.BaseUrl);
        var created = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, escrows).Select(i =>
            client.CreateAsync($"rate-budget-{i}-{Guid.NewGuid():N}", recipient, ApiProcess.IsoSeconds(window))));
        created.Stop();
        var ids = results.Where(r => r.Code == HttpStatusCode.Created && r.Status == "held").Select(r => r.Id!).ToList();
        var afterCreate = await StatsAsync(http, api.BaseUrl);
        var createRequests = afterCreate.Requests - before.Requests;
        Console.WriteLine($"Created {ids.Count}/{escrows} held escrows in {created.Elapsed.TotalSeconds:F1} s: {createRequests} Stripe requests, " +
                          $"predicted at {budget}/s: {createRequests / (double)budget:F1} s");

        // Paused across every deadline (window + grace 5 s + a reminder period), then all refunds are due at once.
        var pausedFor = TimeSpan.FromSeconds(window + 7) - created.Elapsed;
        await Silo.ProcessRunner.RunAsync("kill", ["-STOP", api.Pid.ToString(CultureInfo.InvariantCulture)], asPostgres: false, "kill -STOP");
        await Task.Delay(pausedFor > TimeSpan.Zero ? pausedFor : TimeSpan.Zero);
        await Silo.ProcessRunner.RunAsync("kill", ["-CONT", api.Pid.ToString(CultureInfo.InvariantCulture)], asPostgres: false, "kill -CONT");
        var burst = Stopwatch.StartNew();
        var refunded = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60 + 3 * escrows / (double)budget);
        var pending = new HashSet<string>(ids);
        while (pending.Count > 0 && DateTime.UtcNow < deadline)
        {
            foreach (var id in pending.ToList())
            {
                var view = await client.GetAsync(id);
                if (view.Status == "refunded")
                {
                    pending.Remove(id);
                    refunded++;
                }
            }
            await Task.Delay(200);
        }
        burst.Stop();
        var after = await StatsAsync(http, api.BaseUrl);
        var burstRequests = after.Requests - afterCreate.Requests;
        Console.WriteLine($"Burst: {refunded}/{ids.Count} refunded in {burst.Elapsed.TotalSeconds:F1} s after the resume: {burstRequests} Stripe requests, " +
                          $"predicted at {budget}/s: {burstRequests / (double)budget:F1} s (polled every 200 ms)");
        Console.WriteLine($"Sandbox (limit {limit}/s): requests {after.Requests}, rateLimited {after.RateLimited}, maxRequestsInOneSecond {after.MaxInOneSecond}");
        return refunded == ids.Count && ids.Count == escrows && after.RateLimited == 0 ? 0 : 1;
    }

    private readonly record struct Stats(long Requests, long RateLimited, int MaxInOneSecond);

    private static async Task<Stats> StatsAsync(HttpClient http, string baseUrl)
    {
        var json = JsonDocument.Parse(await http.GetStringAsync(baseUrl + "/_sandbox/stripe/stats")).RootElement;
        return new Stats(json.GetProperty("requests").GetInt64(), json.GetProperty("rateLimited").GetInt64(), json.GetProperty("maxRequestsInOneSecond").GetInt32());
    }
}
