namespace Escrow.Benchmarks;

/// <summary>
/// Escrow.Silo (the standalone silo host, Release build) as a separate process, for the failover scenario. Started
/// directly as <c>dotnet Escrow.Silo.dll</c> (the muxer runs the app in its own process), so <see cref="Kill"/> sends
/// SIGKILL to the silo itself.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private SiloProcess(Process process, StreamWriter log, string baseUrl, string logPath)
    {
        _process = process;
        _log = log;
        BaseUrl = baseUrl;
        LogPath = logPath;
    }

    public string BaseUrl { get; }

    public string LogPath { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static string DllPath(string repo) => Path.Combine(repo, "Escrow.Silo", "bin", "Release", "net10.0", "Escrow.Silo.dll");

    /// <summary>Starts the silo with <paramref name="environment"/> and waits for /health/live (the host is up; the silo joins the cluster as it starts).</summary>
    public static async Task<SiloProcess> StartAsync(string repo, IReadOnlyDictionary<string, string> environment, string logPath, HttpClient http)
    {
        var dll = DllPath(repo);
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build Escrow.Api in Release first (it builds Escrow.Silo), or drop --skip-build.");
        }
        var port = PostgresCluster.FreePort();
        var baseUrl = $"http://127.0.0.1:{port}";
        var info = ChildProcess.ForDll(dll);
        foreach (var (k, v) in environment)
        {
            info.Environment[k] = v;
        }
        info.Environment["urls"] = baseUrl;
        var (process, log) = ChildProcess.StartLogged(info, logPath, "dotnet Escrow.Silo.dll");
        var silo = new SiloProcess(process, log, baseUrl, logPath);
        await ChildProcess.WaitHealthyAsync(process, http, baseUrl + "/health/live", "Escrow.Silo", logPath, silo.DisposeAsync);
        return silo;
    }

    /// <summary>SIGKILL: <see cref="Process.Kill()"/> sends SIGKILL on Linux. No shutdown code runs in the silo.</summary>
    public void Kill() => _process.Kill();

    public ValueTask DisposeAsync() => ChildProcess.KillAsync(_process, _log);
}
