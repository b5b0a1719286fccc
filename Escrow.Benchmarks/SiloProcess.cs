namespace Escrow.Benchmarks;

/// <summary>
/// Escrow.Silo (the standalone silo host, Release build) as a separate process, for the failover scenario. Started
/// directly as <c>dotnet Escrow.Silo.dll</c> (the muxer runs the app in its own process), so <see cref="Kill"/> sends
/// SIGKILL to the silo itself.
/// </summary>
public sealed class SiloProcess : ChildProcess
{
    private SiloProcess(Process process, StreamWriter log, string baseUrl, string logPath)
        : base(process, log, baseUrl, logPath)
    {
    }

    /// <summary>Starts the silo with <paramref name="environment"/> and waits for /health/live (the host is up; the silo joins the cluster as it starts).</summary>
    public static Task<SiloProcess> StartAsync(string repo, IReadOnlyDictionary<string, string> environment, string logPath, HttpClient http)
    {
        var info = ForBuiltDll(repo, "Escrow.Silo", "build Escrow.Api in Release first (it builds Escrow.Silo), or drop --skip-build.");
        var baseUrl = $"http://127.0.0.1:{BenchPostgres.FreePort()}";
        return StartAsync(info, environment, baseUrl, "/health/live", logPath, "Escrow.Silo", http, (p, log) => new SiloProcess(p, log, baseUrl, logPath));
    }

    /// <summary>SIGKILL: <see cref="Process.Kill()"/> sends SIGKILL on Linux. No shutdown code runs in the silo.</summary>
    public void Kill() => Process.Kill();

    public override ValueTask DisposeAsync() => KillAsync();
}
