package lowbit.cuda;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parameter lists of a PTX module's kernels, read from its {@code .entry NAME( .param .TYPE NAME_param_i, ... )}
 * declarations, so that a launch can be checked before the driver sees it: the driver copies each argument's bytes
 * without looking at their type, and an Integer passed where the kernel reads a 64-bit value is garbage on the GPU,
 * silently. Also the thread bounds a kernel was compiled for ({@code .maxntid}, {@code .reqntid}).
 */
public record PtxSignature(String module, String kernel, List<Param> params, int maxThreads) {
    /** One parameter: its PTX type (u32, s64, f32, b8 for a struct...) and its size in bytes. */
    public record Param(String type, int bytes) {
        /** How the message names it: ".u64 (a long or a pointer)". */
        String describe() {
            String kind = switch (type) {
                case "f32" -> "a float";
                case "f64" -> "a double";
                case "u64", "s64", "b64" -> "a long or a pointer";
                case "u32", "s32", "b32" -> "an int";
                default -> bytes + " bytes";
            };
            return "." + type + " (" + kind + ")";
        }
    }

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][\\w$]*)\\s*\\(([^)]*)\\)([^{]*)\\{");
    private static final Pattern PARAM = Pattern.compile(
            "\\.param\\s+(?:\\.align\\s+(\\d+)\\s+)?\\.(\\w+)\\s+[\\w$]+(?:\\s*\\[(\\d+)\\])?");
    private static final Pattern NTID = Pattern.compile("\\.(maxntid|reqntid)\\s+(\\d+)(?:\\s*,\\s*(\\d+))?(?:\\s*,\\s*(\\d+))?");

    /** Every kernel of {@code ptx} (the text of kernels/{@code module}.cu's PTX) by name. */
    public static Map<String, PtxSignature> parse(String module, String ptx) {
        Map<String, PtxSignature> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            String name = m.group(1);
            List<Param> params = new ArrayList<>();
            String list = m.group(2).strip();
            if (!list.isEmpty()) {
                for (String decl : list.split(",")) {
                    Matcher p = PARAM.matcher(decl.strip());
                    if (!p.matches())
                        throw new CudaException("kernels/" + module + ".cu " + name + ": PTX parameter '" + decl.strip()
                                + "' is not '.param .TYPE NAME' or '.param .align N .b8 NAME[M]'");
                    String type = p.group(2);
                    int width = width(module, name, type);
                    int count = p.group(3) == null ? 1 : Integer.parseInt(p.group(3));
                    params.add(new Param(type, width * count));
                }
            }
            int maxThreads = 1024;
            Matcher n = NTID.matcher(m.group(3));
            while (n.find()) {
                long t = 1;
                for (int g = 2; g <= 4; g++) if (n.group(g) != null) t *= Long.parseLong(n.group(g));
                maxThreads = (int) Math.min(maxThreads, t);
            }
            out.put(name, new PtxSignature(module, name, List.copyOf(params), maxThreads));
        }
        return out;
    }

    private static int width(String module, String kernel, String type) {
        if (type.length() < 2) throw unknown(module, kernel, type);
        char c = type.charAt(0);
        if (c != 'u' && c != 's' && c != 'b' && c != 'f') throw unknown(module, kernel, type);
        try {
            int bits = Integer.parseInt(type.substring(1));
            if (bits != 8 && bits != 16 && bits != 32 && bits != 64) throw unknown(module, kernel, type);
            return bits / 8;
        } catch (NumberFormatException e) {
            throw unknown(module, kernel, type);
        }
    }

    private static CudaException unknown(String module, String kernel, String type) {
        return new CudaException("kernels/" + module + ".cu " + kernel + ": PTX parameter type ." + type + " is not one of u/s/b/f 8..64");
    }

    /**
     * Refuses, in one line, arguments that do not fit the parameters: their count, and each one's Java type against the
     * parameter's width (Integer: 4-byte integer, Long: 8-byte integer, Float: .f32, Double: .f64, a device pointer or
     * null: 8-byte integer).
     */
    public void check(Object[] args) {
        String who = "kernels/" + module + ".cu " + kernel;
        if (args.length != params.size())
            throw new CudaException(who + ": " + args.length + " arguments, the kernel takes " + params.size());
        for (int i = 0; i < args.length; i++) {
            Param p = params.get(i);
            Object a = args[i];
            String t = p.type();
            boolean integer = t.charAt(0) != 'f' && !(t.equals("b8") && p.bytes() > 1);   // b8[M] is a struct
            boolean ok;
            String have;
            if (a == null || a instanceof DeviceBuffer || a instanceof jcuda.driver.CUdeviceptr) {
                ok = integer && p.bytes() == 8;
                have = (a == null ? "null" : a instanceof DeviceBuffer ? "a DeviceBuffer" : "a CUdeviceptr") + " (a pointer, 8 bytes)";
            } else if (a instanceof Integer) {
                ok = integer && p.bytes() == 4;
                have = "an Integer (4 bytes)";
            } else if (a instanceof Long) {
                ok = integer && p.bytes() == 8;
                have = "a Long (8 bytes)";
            } else if (a instanceof Float) {
                ok = t.equals("f32");
                have = "a Float";
            } else if (a instanceof Double) {
                ok = t.equals("f64");
                have = "a Double";
            } else {
                throw new CudaException(who + ": argument " + i + " is a " + a.getClass().getSimpleName()
                        + ", not a device buffer, a pointer or a number");
            }
            if (!ok) throw new CudaException(who + ": argument " + i + " is " + have + ", the kernel's parameter " + i + " is " + p.describe());
        }
    }
}
