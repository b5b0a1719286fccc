using Microsoft.Diagnostics.Tracing.Etlx;

namespace Escrow.Benchmarks;

/// <summary>The command line the trace reports (<c>allocations</c>, <c>gc</c>) share: a trace file first, then options.</summary>
internal static class TraceFile
{
    /// <summary>Prints <paramref name="usage"/> when there are no arguments (exit 2) or help is asked for (exit 0).</summary>
    public static bool WantsUsage(string[] args, string usage, out int exitCode)
    {
        exitCode = args.Length == 0 ? 2 : 0;
        if (args.Length > 0 && args[0] is not ("-h" or "--help"))
        {
            return false;
        }
        Console.WriteLine(usage);
        return true;
    }

    /// <summary>Refuses an option the report does not know; exit code 2.</summary>
    public static int Refuse(string option, string usage)
    {
        Console.Error.WriteLine($"unknown or incomplete option {option}");
        Console.Error.WriteLine(usage);
        return 2;
    }

    /// <summary>The EventPipe trace at <paramref name="path"/>, or null (said on stderr) when there is no such file.</summary>
    public static TraceLog? Open(string path)
    {
        if (File.Exists(path))
        {
            return new TraceLog(TraceLog.CreateFromEventPipeDataFile(path));
        }
        Console.Error.WriteLine($"{path} does not exist");
        return null;
    }
}
