namespace Escrow.Benchmarks;

/// <summary>
/// Escrow.Api as a separate process (<c>dotnet Escrow.Api.dll</c>, Release), with the sandboxes standing in for Stripe
/// and Postmark: its own, or those of an <see cref="EmulatorProcess"/>.
/// </summary>
public sealed class ApiProcess : ChildProcess
{
    public const string PlatformKey = "bench-platform-key-0123456789";
    public const string AdminKey = "bench-admin-key-0123456789abcd";
    public const string InboundUser = "postmark";
    public const string InboundPassword = "bench-inbound-password";
    public const string WebhookSecret = "whsec_benchmark0123456789abcdef";

    private ApiProcess(Process process, StreamWriter log, string baseUrl, string logPath)
        : base(process, log, baseUrl, logPath)
    {
    }

    public static async Task BuildAsync(string repo)
    {
        Console.WriteLine("Building Escrow.Api (Release)...");
        await Silo.ProcessRunner.RunAsync("dotnet", ["build", "-c", "Release", "-nologo", "-v", "q", Path.Combine(repo, "Escrow.Api", "Escrow.Api.csproj")],
            asPostgres: false, "dotnet build -c Release Escrow.Api", timeout: TimeSpan.FromMinutes(10));
    }

    /// <summary>
    /// Starts the API and waits for /health/ready. <paramref name="windows"/> are the offered response windows in seconds;
    /// <paramref name="port"/> a free port chosen beforehand (when another process must know the address first).
    /// </summary>
    public static Task<ApiProcess> StartAsync(string repo, string connectionString, IReadOnlyList<int> windows, string logPath, HttpClient http,
        IReadOnlyDictionary<string, string>? environment = null, int? port = null)
    {
        var info = ForBuiltDll(repo, "Escrow.Api", "build Escrow.Api in Release first (or drop --skip-build).");
        var baseUrl = $"http://127.0.0.1:{port ?? BenchPostgres.FreePort()}";
        var env = ServiceEnvironment(connectionString, windows);
        // Localhost clustering binds these: free ones, so that other silos on the machine do not collide.
        env["Silo__SiloPort"] = BenchPostgres.FreePort().ToString(CultureInfo.InvariantCulture);
        env["Silo__GatewayPort"] = BenchPostgres.FreePort().ToString(CultureInfo.InvariantCulture);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            env[k] = v;
        }
        return StartAsync(info, env, baseUrl, "/health/ready", logPath, "Escrow.Api", http, (p, log) => new ApiProcess(p, log, baseUrl, logPath));
    }

    /// <summary>
    /// Silo:EscrowCollectionAge of the service under test, set explicitly (to the service's default, 2 min): the open
    /// scenario waits this long for idle activations to be collected before it measures the settled idle state.
    /// </summary>
    public const int EscrowCollectionAgeSeconds = 120;

    /// <summary>
    /// The service settings of the benchmark (keys, raised rate limit and breaker caps, short grace and reminder
    /// period, the offered windows in seconds), shared by every process of the service under test.
    /// </summary>
    public static Dictionary<string, string> ServiceEnvironment(string connectionString, IReadOnlyList<int> windows)
    {
        var env = new Dictionary<string, string>
        {
            ["ConnectionStrings__Escrow"] = connectionString,
            ["Api__PlatformKeys__0"] = PlatformKey,
            ["Api__AdminKeys__0"] = AdminKey,
            ["Postmark__InboundUsername"] = InboundUser,
            ["Postmark__InboundPassword"] = InboundPassword,
            ["Stripe__WebhookSecret"] = WebhookSecret,
            ["RateLimits__SenderPermitsPerMinute"] = "100000000",
            ["RateLimits__ReaderPermitsPerMinute"] = "100000000",
            ["CircuitBreaker__RefundsPerWindowMax"] = "1000000000",
            ["CircuitBreaker__RefundAmountPerWindowMaxMinor"] = "1000000000000000",
            ["Escrow__ReplyGrace"] = "PT5S",
            ["Escrow__ReminderPeriod"] = "PT1S",
            ["Silo__ReminderMinimumPeriod"] = "00:00:01",
            ["Silo__EscrowCollectionAge"] = TimeSpan.FromSeconds(EscrowCollectionAgeSeconds).ToString("c", CultureInfo.InvariantCulture),
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            // One log line per status change on the console would cost the API CPU the benchmark wants to see.
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };
        for (var i = 0; i < windows.Count; i++)
        {
            env[$"Escrow__ResponseWindows__{i}__Duration"] = IsoSeconds(windows[i]);
            env[$"Escrow__ResponseWindows__{i}__PriceMultiplier"] = "1";
        }
        return env;
    }

    public static string IsoSeconds(int seconds) => string.Create(CultureInfo.InvariantCulture, $"PT{seconds}S");

    public override async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
        {
            // SIGTERM: a graceful shutdown of the silo and the host.
            _ = Silo.ProcessRunner.RunAsync("kill", ["-TERM", Process.Id.ToString(CultureInfo.InvariantCulture)], asPostgres: false, "kill -TERM", throwOnFailure: false);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await Process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync();
            }
        }
        Process.Dispose();
        await Log.DisposeAsync();
    }
}
