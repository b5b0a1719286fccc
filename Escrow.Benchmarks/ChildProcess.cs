namespace Escrow.Benchmarks;

/// <summary>
/// A service process of the benchmark: started as <c>dotnet X.dll</c> on a loopback URL, its output copied to a log,
/// waited for by a health URL.
/// </summary>
public abstract class ChildProcess : IAsyncDisposable
{
    protected ChildProcess(Process process, StreamWriter log, string baseUrl, string logPath)
    {
        Process = process;
        Log = log;
        BaseUrl = baseUrl;
        LogPath = logPath;
    }

    public string BaseUrl { get; }

    public string LogPath { get; }

    public int Pid => Process.Id;

    public bool HasExited => Process.HasExited;

    protected Process Process { get; }

    protected StreamWriter Log { get; }

    public abstract ValueTask DisposeAsync();

    /// <summary>
    /// Starts <paramref name="info"/> with <paramref name="environment"/> and <c>urls</c> = <paramref name="baseUrl"/>,
    /// and waits until <paramref name="healthPath"/> answers 2xx (the process is disposed if it never does).
    /// </summary>
    protected static async Task<T> StartAsync<T>(ProcessStartInfo info, IEnumerable<KeyValuePair<string, string>> environment, string baseUrl,
        string healthPath, string logPath, string name, HttpClient http, Func<Process, StreamWriter, T> create) where T : ChildProcess
    {
        foreach (var (k, v) in environment)
        {
            info.Environment[k] = v;
        }
        info.Environment["urls"] = baseUrl;
        var (process, log) = StartLogged(info, logPath, name);
        var child = create(process, log);
        await WaitHealthyAsync(process, http, baseUrl + healthPath, name, logPath, child.DisposeAsync);
        return child;
    }

    /// <summary>The Release build of <paramref name="project"/> in <paramref name="repo"/>, which must exist.</summary>
    protected static ProcessStartInfo ForBuiltDll(string repo, string project, string missingHint)
    {
        var dll = Path.Combine(repo, project, "bin", "Release", "net10.0", project + ".dll");
        return File.Exists(dll) ? ForDll(dll) : throw new InvalidOperationException($"{dll} is missing: {missingHint}");
    }

    protected static ProcessStartInfo ForDll(string dll)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        return info;
    }

    /// <summary>Starts the process with its standard output and error copied line by line to <paramref name="logPath"/>.</summary>
    private static (Process Process, StreamWriter Log) StartLogged(ProcessStartInfo info, string logPath, string name)
    {
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{name} did not start.");
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var sync = new object();
        void Write(string? line)
        {
            if (line is null)
            {
                return;
            }
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
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, log);
    }

    /// <summary>Kills the process and its children if it still runs (SIGKILL: no shutdown code runs), then releases it and its log.</summary>
    protected async ValueTask KillAsync()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            await Process.WaitForExitAsync();
        }
        Process.Dispose();
        await Log.DisposeAsync();
    }

    /// <summary>Polls <paramref name="url"/> until it answers 2xx; fails (after <paramref name="dispose"/>) when the process exits or two minutes pass.</summary>
    private static async Task WaitHealthyAsync(Process process, HttpClient http, string url, string name, string logPath, Func<ValueTask> dispose)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited with {process.ExitCode} during start-up; see {logPath}:\n{Tail(logPath)}");
            }
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                await dispose();
                throw new InvalidOperationException($"{name} did not answer {url} within 2 minutes; see {logPath}:\n{Tail(logPath)}");
            }
            await Task.Delay(250);
        }
    }

    /// <summary>The folder of Escrow.sln, above the current directory or the program's.</summary>
    public static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Escrow.sln")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new InvalidOperationException("Escrow.sln not found above the current directory: run from the repository.");
    }

    public static string Tail(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var lines = reader.ReadToEnd().Split('\n');
            return string.Join('\n', lines.TakeLast(40));
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }
}
