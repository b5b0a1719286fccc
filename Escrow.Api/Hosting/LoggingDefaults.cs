using Microsoft.Extensions.Configuration.Memory;

namespace Escrow.Api.Hosting;

/// <summary>
/// Log levels a person can read at start-up: the frameworks (Orleans, Polly, ASP.NET Core, Npgsql) at Warning, the
/// service's own categories at Information. They are the lowest-precedence configuration source, not appsettings.json
/// (which is looked for in the working directory, not beside the app), so <c>Logging__LogLevel__Orleans=Information</c>
/// or any other source still overrides them.
/// </summary>
public static class LoggingDefaults
{
    public static readonly IReadOnlyDictionary<string, string?> Levels = new Dictionary<string, string?>
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft"] = "Warning",
        ["Logging:LogLevel:Orleans"] = "Warning",
        ["Logging:LogLevel:Polly"] = "Warning",
        ["Logging:LogLevel:System.Net.Http"] = "Warning",
        ["Logging:LogLevel:Npgsql"] = "Warning",
        ["Logging:LogLevel:Escrow"] = "Information",
    };

    public static void AddEscrowLoggingDefaults(this ConfigurationManager configuration) =>
        configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Levels });
}
