namespace Escrow.Sandbox;

/// <summary>The JSON of the emulators' own control endpoints (<c>/_sandbox/...</c>): web defaults, camelCase.</summary>
internal static class SandboxControlJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    /// <summary>Reads the request's JSON body; <c>Invalid</c> is the 400 to answer when it is not JSON.</summary>
    public static async Task<(T? Body, IResult? Invalid)> ReadAsync<T>(HttpContext ctx)
    {
        try
        {
            return (await JsonSerializer.DeserializeAsync<T>(ctx.Request.Body, Options, ctx.RequestAborted).ConfigureAwait(false), null);
        }
        catch (JsonException ex)
        {
            return (default, Results.BadRequest(new { error = "Invalid JSON: " + ex.Message }));
        }
    }
}
