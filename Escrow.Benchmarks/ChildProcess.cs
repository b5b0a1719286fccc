namespace Escrow.Benchmarks;

/// <summary>What the service processes of the benchmark share: started as <c>dotnet X.dll</c>, output to a log, waited for by a health URL.</summary>
internal static class ChildProcess
{
    public static ProcessStartInfo ForDll(string dll)
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
    public static (Process Process, StreamWriter Log) StartLogged(ProcessStartInfo info, string logPath, string name)
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
    public static async ValueTask KillAsync(Process process, StreamWriter log)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        process.Dispose();
        await log.DisposeAsync();
    }

    /// <summary>Polls <paramref name="url"/> until it answers 2xx; fails (after <paramref name="dispose"/>) when the process exits or two minutes pass.</summary>
    public static async Task WaitHealthyAsync(Process process, HttpClient http, string url, string name, string logPath, Func<ValueTask> dispose)
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
