using System.Diagnostics;

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
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var (k, v) in environment)
        {
            info.Environment[k] = v;
        }
        info.Environment["urls"] = baseUrl;
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet Escrow.Silo.dll did not start.");
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var sync = new object();
        void Write(string? line)
        {
            if (line is not null)
            {
                lock (sync)
                {
                    try
                    {
                        log.WriteLine(line);
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
            }
        }
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var silo = new SiloProcess(process, log, baseUrl, logPath);
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"Escrow.Silo exited with {process.ExitCode} during start-up; see {logPath}.");
            }
            try
            {
                using var response = await http.GetAsync(baseUrl + "/health/live");
                if (response.IsSuccessStatusCode)
                {
                    return silo;
                }
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                await silo.DisposeAsync();
                throw new InvalidOperationException($"Escrow.Silo did not answer /health/live within 2 minutes; see {logPath}.");
            }
            await Task.Delay(250);
        }
    }

    /// <summary>SIGKILL: <see cref="Process.Kill()"/> sends SIGKILL on Linux. No shutdown code runs in the silo.</summary>
    public void Kill() => _process.Kill();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        await _log.DisposeAsync();
    }
}
