using System.Diagnostics;

namespace Escrow.Silo;

/// <summary>
/// Runs a short-lived tool and waits for it, within a time limit: PostgreSQL's server commands (as the postgres system
/// user through runuser when <paramref name="asPostgres"/>, since PostgreSQL refuses to run as root), and the
/// benchmark's tools. Shared by the local cluster, the tests' server and the benchmark.
/// </summary>
public static class ProcessRunner
{
    public static async Task<int> RunAsync(string file, IReadOnlyList<string> args, bool asPostgres, string what, bool throwOnFailure = true,
        bool captureOutput = true, IDictionary<string, string>? environment = null, StringWriter? output = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = captureOutput,
            RedirectStandardError = captureOutput,
        };
        if (asPostgres)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                info.ArgumentList.Add(a);
            }
        }
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{what}: could not start {info.FileName}.");
        process.StandardInput.Close();
        // Output is read only for short-lived tools: pg_ctl's server would keep the inherited pipes open.
        var stdout = captureOutput ? process.StandardOutput.ReadToEndAsync() : Task.FromResult("");
        var stderr = captureOutput ? process.StandardError.ReadToEndAsync() : Task.FromResult("");
        var limit = timeout ?? TimeSpan.FromMinutes(10);
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{what} did not finish within {limit.TotalSeconds} s.");
        }
        var text = await stdout + await stderr;
        output?.Write(text);
        if (throwOnFailure && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} failed (exit {process.ExitCode}): {info.FileName} {string.Join(' ', info.ArgumentList)}\n{text}");
        }
        return process.ExitCode;
    }
}
